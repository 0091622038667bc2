"""absl command-line tools over the tfadv library (installed as the ``tfadv_tools`` package)."""
