"""Batch explain: the stages of one image (job), the local pipeline that overlaps them, and
the Ray runner that spreads them over a cluster."""
