"""recsys: an open, AWS-native video recommendation system."""

__version__ = "0.1.0"
