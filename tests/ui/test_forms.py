"""How a refused action reads on a form: per-field errors named by their labels, not by their keys."""

from __future__ import annotations

import pytest

from app.services.errors import Invalid
from app.services.tracking.rules import TrackingValidationError, validate
from app.ui.forms import error_text


def test_field_errors_read_with_their_labels_not_their_keys() -> None:
    with pytest.raises(TrackingValidationError) as caught:
        validate("meta", "", {"pixel_id": "12", "evil": "x"})
    text = error_text(Invalid(str(caught.value), errors=caught.value.errors))
    assert text.startswith("Please fix: ")
    assert "Pixel (dataset) ID is not valid" in text and "evil is not a field of Meta" in text
    assert "pixel_id:" not in text and "name:" not in text


def test_a_refusal_without_field_errors_is_its_message() -> None:
    assert error_text(Invalid("the reason is required")) == "the reason is required"
