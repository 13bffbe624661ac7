"""Wire protocols of other tools, served over the same service layer."""
