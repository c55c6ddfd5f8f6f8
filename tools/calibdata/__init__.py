"""Builder of calib_data/ (run as ``python tools/make_calib_data.py``): catalogue, sources, imaging, output."""
