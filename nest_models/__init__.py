"""NESTML e-prop neurons for NEST: the module build (:mod:`.build`), the ``nestml`` backend (:mod:`.backend`)
and e-prop for an existing PyNEST network (:mod:`.pynest`)."""
