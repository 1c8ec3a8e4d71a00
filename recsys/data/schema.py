"""Column names, event types and defaults of the interaction data (one place for every name)."""

from __future__ import annotations

# Interactions (pipeline input). user_id and video_id are required.
USER_ID = "user_id"
VIDEO_ID = "video_id"
TIMESTAMP = "timestamp"  # epoch seconds (int64) after import
EVENT_TYPE = "event_type"
WATCH_TIME = "watch_time"  # seconds
WEIGHT = "weight"  # explicit implicit-feedback weight; overrides the event-type weight when present

INTERACTION_REQUIRED = (USER_ID, VIDEO_ID)
INTERACTION_OPTIONAL = (TIMESTAMP, EVENT_TYPE, WATCH_TIME, WEIGHT)
INTERACTION_COLUMNS = INTERACTION_REQUIRED + INTERACTION_OPTIONAL

# Videos (optional metadata file).
CATEGORY = "category"
DURATION = "duration"  # seconds
UPLOAD_TS = "upload_ts"  # epoch seconds
VIDEO_COLUMNS = (VIDEO_ID, CATEGORY, DURATION, UPLOAD_TS)

# Users (optional metadata file); only user_id is used today, extra columns are kept as is.
USER_COLUMNS = (USER_ID,)

EVENT_TYPES = ("view", "like", "share", "skip", "complete")
UNKNOWN_CATEGORY = "unknown"

# Internal columns added by preprocessing.
ROW = "_row"  # file order, the time fallback
WATCH_RATIO = "watch_ratio"
POPULARITY = "popularity"
TRENDING = "trending"
INTERACTION_COUNT = "interaction_count"
AVG_WATCH_RATIO = "avg_watch_ratio"
LABEL = "label"
