"""The alert texts: the seed's messages, character for character."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from greenapi.domain.messages import AlertFacts, render_alert
from greenapi.domain.rules import AlertKind

AT = datetime(2025, 1, 15, 13, 30, 0, tzinfo=UTC)  # 14:30:00 in Paris (winter)


def test_not_authorized_message_is_the_seeds():
    facts = AlertFacts(
        AlertKind.INSTANCE_NOT_AUTHORIZED, "8101819298", AT, "https://7105.api.greenapi.com",
        state="notAuthorized", error='Instance state is "notAuthorized" instead of "authorized"',
    )
    assert render_alert(facts, "Europe/Paris") == (
        "🚨 *ALERTE GREEN API* 🚨\n\n⏰ 15/01/2025 14:30:00\n📱 Instance: 8101819298\n\n"
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
        "🚨 *ALERTE GREEN API* 🚨\n\n⏰ 15/01/2025 14:30:00\n📱 Instance: 8101819298\n\n"
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
        "🚨 *ALERTE GREEN API* 🚨\n\n⏰ 15/01/2025 14:30:00\n📱 Instance: 8101819298\n\n"
        "🔴 *ÉCHEC COMPLET DU SYSTÈME*\n\nErreur: Primary: Connection timeout | Reboot: HTTP 500\n\n"
        "⚠️ *ACTION IMMÉDIATE REQUISE:*\n1. Instance complètement inaccessible\n2. Reboot impossible\n"
        "3. Vérifier dashboard Green API\n4. Contact support Green API si nécessaire\n\n"
        "🔗 Dashboard: https://7105.api.greenapi.com"
    )


@pytest.mark.parametrize(
    ("timezone", "shown"),
    [("Europe/Paris", "15/01/2025 14:30:00"), ("UTC", "15/01/2025 13:30:00"), ("America/New_York", "15/01/2025 08:30:00")],
)
def test_time_is_shown_in_the_configured_timezone(timezone, shown):
    facts = AlertFacts(AlertKind.COMPLETE_FAILURE, "1", AT, "u", error="e")
    assert f"⏰ {shown}\n" in render_alert(facts, timezone)


def test_every_alert_kind_has_a_message():
    for kind in AlertKind:
        text = render_alert(AlertFacts(kind, "1", AT, "https://x", fix="fix it", error="e"), "UTC")
        assert text.startswith("🚨 *ALERTE GREEN API* 🚨") and text.endswith("🔗 Dashboard: https://x")
        assert "{" not in text
