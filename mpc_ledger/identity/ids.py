"""The syntax of ids: member ids, and ``<member id>/<name>`` ids (users and datasets).

One definition for every check: the genesis (member ids), the ledger (a user
id names its member), datasets (``<owner>/<name>``), job specs (recipients,
the dealer) and policies (the same parts, with ``*`` wildcards). A user id and
a dataset id share one syntax on purpose: both are a name in a member's
namespace, and the member is the part before the slash.
"""

from __future__ import annotations

import re

__all__ = ["MEMBER_ID", "MEMBER_ID_SYNTAX", "NAME_SYNTAX", "QUALIFIED_ID"]

MEMBER_ID_SYNTAX = "[a-z0-9][a-z0-9-]{0,62}"
"""A member id: lowercase letters, digits and '-', starting with a letter or digit, <= 63."""
NAME_SYNTAX = "[a-z0-9][a-z0-9._-]{0,62}"
"""The name after the slash: also '.' and '_'."""

MEMBER_ID = re.compile(rf"^{MEMBER_ID_SYNTAX}$")
QUALIFIED_ID = re.compile(rf"^({MEMBER_ID_SYNTAX})/({NAME_SYNTAX})$")
"""``<member id>/<name>``: group 1 the member, group 2 the name."""
