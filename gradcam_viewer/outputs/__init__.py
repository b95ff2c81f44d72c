"""Everything the program writes: the records (JSON, CSV), where they go (a mirror of the
inputs), how they are written (atomically, never over a file without permission), what an
interrupted run already finished, the evaluate and sanity reports, and the DICOM objects.
No Qt here; the window and the commands share it."""
