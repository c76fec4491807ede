"""The wire: settings, topics, event and alert schemas, the codec, the Faust app and the gateway client."""
