"""In-order scoreboard: compares received payload words with the golden model's."""

from __future__ import annotations

from .payload import PayloadCodec

__all__ = ["Scoreboard", "MismatchError"]


class MismatchError(AssertionError):
    """An output word differs from the golden model, or an output is missing or extra."""


class Scoreboard:
    """Checks every received word, in order, against the expected words.

    Parameters
    ----------
    expected : list of int
        Expected payload words from the golden model.
    codec : PayloadCodec
        Decodes words to name the differing fields in the report.
    sources : list of int, optional
        Index of the input transaction behind each expected output (for the report).
    """

    def __init__(self, expected: list[int], codec: PayloadCodec, sources: list[int] | None = None):
        self.expected = list(expected)
        self.codec = codec
        self.sources = sources
        self.received = 0

    def check(self, word: int, cycle: int) -> None:
        """Compare the next received word; raise :class:`MismatchError` at the first mismatch."""
        index = self.received
        self.received += 1
        if index >= len(self.expected):
            raise MismatchError(f"extra output #{index} at cycle {cycle}: only "
                                f"{len(self.expected)} expected (a duplicated word?)")
        if word != self.expected[index]:
            source = f" (from input #{self.sources[index]})" if self.sources is not None else ""
            raise MismatchError(
                f"output #{index}{source} at cycle {cycle} differs from the golden model: "
                f"{self.codec.describe_difference(self.expected[index], word)}")

    def check_complete(self, cycle: int) -> None:
        """Raise :class:`MismatchError` unless every expected word was received."""
        if self.received != len(self.expected):
            raise MismatchError(f"received {self.received} of {len(self.expected)} expected "
                                f"outputs by cycle {cycle} (a lost word or a hang?)")
