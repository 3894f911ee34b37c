"""The organisation's privacy policy as facts the rules check."""

from watchdog.policy.loader import PolicyError, load_policy, parse_policy
from watchdog.policy.model import Policy, Processor, Role, Thresholds

__all__ = ["Policy", "PolicyError", "Processor", "Role", "Thresholds", "load_policy",
           "parse_policy"]
