"""`.env` is read by python-dotenv: quotes, comments and `export` as a shell reads them, and a `$`
in a generated secret kept as written."""

from __future__ import annotations

from pathlib import Path

from launcher.stack import load_dotenv


def test_a_dotenv_file_reads_as_a_shell_would(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text(
        "# the clinic's settings\n"
        "\n"
        "CLINIC_TIMEZONE=America/Chicago\n"
        "export PUBLIC_BASE_URL=https://sms.example-clinic.org  # Twilio signs this\n"
        "TWILIO_AUTH_TOKEN='abc$def'\n"
        'CONTACT_HOURS="08:00-20:00"\n'
        "EMPTY=\n"
        "NO_VALUE\n",
        encoding="utf-8",
    )
    assert load_dotenv(env) == {
        "CLINIC_TIMEZONE": "America/Chicago",
        "PUBLIC_BASE_URL": "https://sms.example-clinic.org",
        "TWILIO_AUTH_TOKEN": "abc$def",
        "CONTACT_HOURS": "08:00-20:00",
        "EMPTY": "",
    }


def test_no_file_is_no_settings(tmp_path: Path) -> None:
    assert load_dotenv(tmp_path / ".env") == {}
