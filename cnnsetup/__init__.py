"""cnnsetup: get a student's machine ready for deep learning, and prove that it is."""

__version__ = "0.1.0"
