"""Starts the whole product on one machine: database, backend, action server, Rasa, SMS simulator."""
