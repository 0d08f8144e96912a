"""Errors raised by the ROS message conversions."""


class MessageConversionError(ValueError):
    """A ROS message cannot be converted: malformed, truncated or of an unsupported kind.

    The message always names the field and the values that disagree, e.g.
    ``"Image data size mismatch: step 1920 * height 480 = 921600 bytes expected, got 921000"``.
    """
