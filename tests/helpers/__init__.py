"""Code the tests share: servers, fakes, and helpers that more than one test module uses."""

import pkgutil

import pytest

# Asserts in these modules explain their failures as a test module's do: several of the helpers were in one.
pytest.register_assert_rewrite(*(f"{__name__}.{module.name}" for module in pkgutil.iter_modules(__path__)))
