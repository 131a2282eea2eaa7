"""`BaseOutput`: the base of the schedulers' output dataclasses (attribute access is all the recorder uses)."""


class BaseOutput:
    pass
