"""Tests of the project that hosts taskops (``config``) and of its demo app, not of the library."""
