"""Ocula's bundled demo: 60 real frames of OpenCV's ``vtest.avi`` with person boxes.

* :mod:`ocula.demo.paths` finds the data (``data/images``, ``data/annotations.json``,
  ``data/LABELS.md`` on how the labels were made, ``data/LICENSE-vtest.txt``);
* :func:`ocula.demo.build.build_demo` loads it into a client and runs the HOG and
  SSDLite person detectors over it (``ocula demo`` on the command line).
"""
