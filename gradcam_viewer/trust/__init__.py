"""Can this output be trusted? Out-of-distribution warning (ood), sanity check of the heatmaps
(sanity), localisation measured on the user's own annotations (evaluate). No Qt here."""
