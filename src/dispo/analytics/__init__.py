"""Post-call analytics: the per-agent configuration of what to extract from each call."""

from dispo.analytics.config import METRIC_TYPES, AnalyticsConfig, DispositionMetric, parse_metrics

__all__ = ["METRIC_TYPES", "AnalyticsConfig", "DispositionMetric", "parse_metrics"]
