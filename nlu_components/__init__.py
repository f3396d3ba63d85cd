"""Custom NLU components for the waitlist assistant's Rasa pipeline."""
