# Makes native/ importable from setup.py (native.build); the library itself is C.
