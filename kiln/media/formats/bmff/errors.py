"""The one error type of the ISO-BMFF package, for bad input to the writers and malformed files."""


class BmffError(ValueError):
    """Raised for input that cannot become a valid box, and for bytes that are not valid boxes."""
