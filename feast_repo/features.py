"""Feature views matching what Freshet writes (topology section `feast:`).

View, entity and feature names are hashed into the Redis fields Freshet
writes, so they must equal the topology's `feast.user_view` / `feast.item_view`
settings (the defaults below match the defaults there). Each view is fed by a
PushSource (Freshet writes the online store directly, as `store.push` would);
Feast requires a batch source behind it, used only by `feast materialize`.
"""
from datetime import timedelta

from feast import Entity, FeatureView, Field, FileSource, PushSource, ValueType
from feast.types import Array, Float32, Int64, String

# Freshet ids are byte strings: String entities (a request value of 1001 reads "1001").
user = Entity(name="user_id", join_keys=["user_id"], value_type=ValueType.STRING,
              description="Freshet user id")
item = Entity(name="item_id", join_keys=["item_id"], value_type=ValueType.STRING,
              description="Freshet item id")

user_push = PushSource(
    name="user_features_push",
    batch_source=FileSource(name="user_features_batch", path="data/user_features.parquet",
                            timestamp_field="event_timestamp"),
)
item_push = PushSource(
    name="item_features_push",
    batch_source=FileSource(name="item_features_batch", path="data/item_features.parquet",
                            timestamp_field="event_timestamp"),
)

user_features = FeatureView(
    name="user_features",
    entities=[user],
    # The row's _ts is the user's latest positive interaction; the Python client
    # does not check ttl, the Go server flags older rows as OUTSIDE_MAX_AGE.
    ttl=timedelta(days=365),
    schema=[
        Field(name="recent_items_50", dtype=Array(String)),
        Field(name="interaction_count", dtype=Int64),
        # = embeddings.dimension in the topology (64 by default).
        Field(name="embedding", dtype=Array(Float32), vector_length=64),
    ],
    source=user_push,
    online=True,
)

item_features = FeatureView(
    name="item_features",
    entities=[item],
    # At least the window (7 d): counts fall without new events, and _ts is the
    # time the counts are as of (the latest event or the latest pane expiry).
    ttl=timedelta(days=8),
    schema=[
        Field(name="popularity_7d", dtype=Int64),
        Field(name="impressions_7d", dtype=Int64),
        Field(name="embedding", dtype=Array(Float32), vector_length=64),
    ],
    source=item_push,
    online=True,
)
