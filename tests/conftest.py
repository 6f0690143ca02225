"""Every test session compiles into its own cache directory, never the user's ~/.cache/tflc."""

import pytest


@pytest.fixture(autouse=True, scope="session")
def private_compile_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TFLC_CACHE_DIR", str(tmp_path_factory.mktemp("tflc-cache")))
        yield
