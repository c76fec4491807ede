"""Services: what the routes call; the only API code that talks to Redis or Kafka."""
