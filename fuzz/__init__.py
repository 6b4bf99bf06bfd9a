"""
Coverage-guided fuzz targets (atheris), one per parser.

Each C{fuzz_*.py} module defines C{testOneInput(data)} and, run as a
script from the repository root, hands it to atheris (libFuzzer options on
the command line)::

    PYTHONPATH=. .venv/bin/python fuzz/fuzz_frames.py /tmp/new fuzz/corpus/frames -runs=100000

libFuzzer writes new inputs to the I{first} corpus directory: put a scratch
directory first so that the committed seeds in C{fuzz/corpus/<target>/} stay
as they are.  C{tests/test_fuzz.py} runs every target briefly in CI.
"""
