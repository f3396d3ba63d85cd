"""Custom Rasa input/output channels for the clinic waitlist SMS assistant."""
