"""Custom actions of the waitlist assistant.

Each action makes exactly one call to the backend's reply API and chooses a
response from `domain.yml` based on the answer. Business rules live in the
backend; wording lives in the domain.
"""
