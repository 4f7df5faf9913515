"""The public surface is exactly what __all__ says (cf. httpx's test of the same name)."""

import types

import mosslite


def test_all_is_sorted_and_complete() -> None:
    assert mosslite.__all__ == sorted(mosslite.__all__)
    public = {
        name
        for name in dir(mosslite)
        if not name.startswith("_") and not isinstance(getattr(mosslite, name), types.ModuleType)
    }
    assert set(mosslite.__all__) == public | {"errors", "__version__"}
