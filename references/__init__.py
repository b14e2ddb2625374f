"""Plain-numpy statements of the book's semantics, slow and obviously correct.

The tests compare every fastnum kernel with these, and the benchmark times
them as the book's own loops (``bench/`` imports them from here, never from
``tests/``). Not installed with the package: they live beside it.
"""
