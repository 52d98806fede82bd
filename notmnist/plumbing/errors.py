"""The errors a user can fix: each is printed as one line that names the file or parameter."""


class UserError(Exception):
    """A bad input file, a missing output of an earlier stage, a failed run: one clear line."""


class ParamError(UserError):
    """A bad value in params.yaml; the message starts with the parameter's dotted name."""
