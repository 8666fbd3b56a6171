"""The alert texts: the seed's messages, character for character."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from greenapi.domain.incidents import Incident
from greenapi.domain.messages import AlertFacts, render_alert, render_follow_up
from greenapi.domain.rules import AlertKind

AT = datetime(2025, 1, 15, 13, 30, 0, tzinfo=UTC)  # 14:30:00 in Paris (winter)


def test_not_authorized_message_is_the_seeds():
    facts = AlertFacts(
        AlertKind.INSTANCE_NOT_AUTHORIZED, "8101819298", AT, "https://7105.api.greenapi.com",
        state="notAuthorized", error='Instance state is "notAuthorized" instead of "authorized"',
    )
    assert render_alert(facts, "Europe/Paris") == (
        "🚨 *ALERTE GREEN API* 🚨\n\n⏰ 15/01/2025 14:30:00 CET\n📱 Instance: 8101819298\n\n"
        "⚠️ *INSTANCE NON AUTORISÉE*\n\nÉtat détecté: notAuthorized\n"
        'Erreur: Instance state is "notAuthorized" instead of "authorized"\n\n'
        "ℹ️ *PAS DE REBOOT AUTOMATIQUE*\nLe reboot déconnecte WhatsApp (nécessite scan QR)\n\n"
        "⚠️ *ACTION SUGGÉRÉE:*\n1. Vérifier le dashboard Green API\n2. Reconnecter WhatsApp si nécessaire\n"
        "3. Ou attendre la reconnexion automatique\n\n🔗 Dashboard: https://7105.api.greenapi.com"
    )


def test_timeout_and_reboot_failed_message_is_the_seeds():
    facts = AlertFacts(
        AlertKind.TIMEOUT_AND_REBOOT_FAILED, "8101819298", AT, "https://7105.api.greenapi.com",
        error="Connection timeout", response_time_ms=10000,
    )
    assert render_alert(facts, "Europe/Paris") == (
        "🚨 *ALERTE GREEN API* 🚨\n\n⏰ 15/01/2025 14:30:00 CET\n📱 Instance: 8101819298\n\n"
        "❌ *TIMEOUT + REBOOT ÉCHOUÉ*\n\nErreur: Connection timeout\nTemps réponse: 10000ms\n\n"
        "⚠️ *ACTION REQUISE:*\n1. L'instance ne répond plus\n2. Reboot automatique a échoué\n"
        "3. Intervention manuelle critique\n\n🔗 Dashboard: https://7105.api.greenapi.com"
    )


def test_complete_failure_message_is_the_seeds():
    facts = AlertFacts(
        AlertKind.COMPLETE_FAILURE, "8101819298", AT, "https://7105.api.greenapi.com",
        error="Primary: Connection timeout | Reboot: HTTP 500",
    )
    assert render_alert(facts, "Europe/Paris") == (
        "🚨 *ALERTE GREEN API* 🚨\n\n⏰ 15/01/2025 14:30:00 CET\n📱 Instance: 8101819298\n\n"
        "🔴 *ÉCHEC COMPLET DU SYSTÈME*\n\nErreur: Primary: Connection timeout | Reboot: HTTP 500\n\n"
        "⚠️ *ACTION IMMÉDIATE REQUISE:*\n1. Instance complètement inaccessible\n2. Reboot impossible\n"
        "3. Vérifier dashboard Green API\n4. Contact support Green API si nécessaire\n\n"
        "🔗 Dashboard: https://7105.api.greenapi.com"
    )


@pytest.mark.parametrize(
    ("timezone", "shown"),
    [("Europe/Paris", "15/01/2025 14:30:00 CET"), ("UTC", "15/01/2025 13:30:00 UTC"),
     ("America/New_York", "15/01/2025 08:30:00 EST"), ("America/Sao_Paulo", "15/01/2025 10:30:00 UTC-03")],
)
def test_time_is_shown_in_the_configured_timezone(timezone, shown):
    facts = AlertFacts(AlertKind.COMPLETE_FAILURE, "1", AT, "u", error="e")
    assert f"⏰ {shown}\n" in render_alert(facts, timezone)


def test_every_alert_kind_has_a_message():
    for kind in AlertKind:
        text = render_alert(AlertFacts(kind, "1", AT, "https://x", fix="fix it", error="e"), "UTC")
        assert text.startswith("🚨 *ALERTE GREEN API* 🚨") and text.endswith("🔗 Dashboard: https://x")
        assert "{" not in text


# --- follow-ups: every time shown is a real check time -------------------------------------------

PARIS = ZoneInfo("Europe/Paris")
LINK = "https://airflow.example.org/green-api/"


def paris(hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(2026, 1, 15, hour, minute, second, tzinfo=PARIS)


# The runs of 17:00 (checked at 17:03:02: the run started late) and 17:10 (checked at 17:10:05).
OUTAGE = Incident(
    "8101819298", AlertKind.INSTANCE_NOT_AUTHORIZED, opened_at=paris(17, 0), first_failed_at=paris(17, 3, 2),
    last_state="notAuthorized", last_error="e",
)  # fmt: skip
RESOLVED = replace(OUTAGE, resolved_at=paris(17, 10), recovered_at=paris(17, 10, 5))


@pytest.mark.parametrize(
    ("kind", "incident", "checked_at", "language", "text"),
    [
        ("resolution", RESOLVED, paris(17, 10, 5), "fr",
         "✅ *GREEN API* ✅\n\n⏰ 15/01/2026 17:10:05 CET\n📱 Instance: 8101819298\n\n✅ *INCIDENT RÉSOLU*\n\n"
         "Problème: instance non autorisée\n"
         "Durée totale: 7 min (du 15/01/2026 17:03:02 CET au 15/01/2026 17:10:05 CET)\n"
         f"Actions: aucun reboot\n\n🔗 Dashboard: {LINK}"),
        ("resolution", RESOLVED, paris(17, 10, 5), "en",
         "✅ *GREEN API* ✅\n\n⏰ 15/01/2026 17:10:05 CET\n📱 Instance: 8101819298\n\n✅ *INCIDENT RESOLVED*\n\n"
         "Problem: instance not authorized\n"
         "Total downtime: 7 min (from 15/01/2026 17:03:02 CET to 15/01/2026 17:10:05 CET)\n"
         f"Actions: no reboot\n\n🔗 Dashboard: {LINK}"),
        # The run of 18:00, checked at 18:01:30: 58 min 28 s after the first failing check.
        ("reminder", OUTAGE, paris(18, 1, 30), "fr",
         "🚨 *ALERTE GREEN API* 🚨\n\n⏰ 15/01/2026 18:01:30 CET\n📱 Instance: 8101819298\n\n"
         "🔁 *RAPPEL: INCIDENT EN COURS*\n\nProblème: instance non autorisée\n"
         "Depuis: 58 min (ouvert le 15/01/2026 17:03:02 CET)\nDernier état: notAuthorized\nDernière erreur: e\n"
         f"Reboots: 0\n\n🔗 Dashboard: {LINK}"),
        ("reminder", OUTAGE, paris(18, 1, 30), "en",
         "🚨 *GREEN API ALERT* 🚨\n\n⏰ 15/01/2026 18:01:30 CET\n📱 Instance: 8101819298\n\n"
         "🔁 *REMINDER: INCIDENT ONGOING*\n\nProblem: instance not authorized\n"
         "For: 58 min (opened 15/01/2026 17:03:02 CET)\nLast state: notAuthorized\nLast error: e\n"
         f"Reboots: 0\n\n🔗 Dashboard: {LINK}"),
    ],
)  # fmt: skip
def test_follow_ups_give_the_real_times_of_the_checks(kind, incident, checked_at, language, text):
    assert render_follow_up(kind, incident, checked_at=checked_at, dashboard_url=LINK, timezone="Europe/Paris",
                            language=language) == text  # fmt: skip


@pytest.mark.parametrize(
    ("language", "first_line"),
    [("fr", "⬆️ *ESCALADE (niveau 2)*\nIncident toujours en cours depuis 15 min.\n\n"),
     ("en", "⬆️ *ESCALATION (level 2)*\nIncident still ongoing after 15 min.\n\n")],
)
def test_escalation_says_how_long_as_checked(language, first_line):
    opening = render_alert(AlertFacts(AlertKind.INSTANCE_NOT_AUTHORIZED, "8101819298", paris(17, 18, 10), LINK),
                           "Europe/Paris", language)  # fmt: skip
    text = render_follow_up("escalation", OUTAGE, checked_at=paris(17, 18, 10), dashboard_url=LINK,
                            timezone="Europe/Paris", language=language, level=2, opening_text=opening)  # fmt: skip
    assert text == first_line + opening
    assert "⏰ 15/01/2026 17:18:10 CET\n" in text


def test_a_grouped_message_lists_each_incident_and_counts_past_its_lines():
    from greenapi.domain.incidents import Incident
    from greenapi.domain.messages import GROUP_LINES, render_group

    opened = datetime(2025, 1, 15, 13, 0, tzinfo=UTC)
    many = [Incident(f"11010{n:05d}", AlertKind.INSTANCE_NOT_AUTHORIZED, opened, first_failed_at=opened)
            for n in range(GROUP_LINES + 3)]  # fmt: skip
    text = render_group("opening", many, checked_at=opened.replace(minute=20), dashboard_url="https://x/",
                        timezone="UTC", language="en")  # fmt: skip
    assert text.startswith("🚨 *GREEN API ALERT* 🚨\n\n⏰ 15/01/2025 13:20:00 UTC\n\n📋 *43 NEW INCIDENTS*\n\n")
    assert "• 1101000000: instance not authorized (since 15/01/2025 13:00:00 UTC, 20 min)" in text
    assert text.count("\n• ") == GROUP_LINES and "… and 3 more (see the dashboard)" in text
    assert text.endswith("🔗 Dashboard: https://x/")
