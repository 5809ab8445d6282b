"""The one error type of `facelift infer`: a bad input, phrased as one line for the user."""


class InferError(ValueError):
    """A bad photo, model or option; the message is one line naming the value and what is allowed."""
