"""Parsers for the on-disk formats: IDX, CIFAR binary, CelebA, image folders.

Each parser reads files and returns numpy/torch arrays; none of them searches,
downloads or caches (that is :mod:`resnetlab.data.locate`, :mod:`resnetlab.data.download`
and :mod:`resnetlab.data.cache`). Every malformed input raises :class:`DataError` naming
the file, what was expected, what was found and how to fix it.
"""
