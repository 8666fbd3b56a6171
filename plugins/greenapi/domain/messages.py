"""Alert texts. The first three are the seed's messages (French, WhatsApp ``*bold*``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from greenapi.domain.incidents import NO_ANSWER, STATE_PREFIX, Episode, Incident, format_duration
from greenapi.domain.rules import AlertKind

HEADER = "🚨 *ALERTE GREEN API* 🚨\n\n⏰ {time}\n📱 Instance: {instance_id}\n\n"
FOOTER = "\n\n🔗 Dashboard: {dashboard_url}"

BODIES: dict[AlertKind, str] = {
    AlertKind.INSTANCE_NOT_AUTHORIZED: (
        "⚠️ *INSTANCE NON AUTORISÉE*\n\n"
        "État détecté: {state}\n"
        "Erreur: {error}\n\n"
        "ℹ️ *PAS DE REBOOT AUTOMATIQUE*\n"
        "Le reboot déconnecte WhatsApp (nécessite scan QR)\n\n"
        "⚠️ *ACTION SUGGÉRÉE:*\n"
        "1. Vérifier le dashboard Green API\n"
        "2. Reconnecter WhatsApp si nécessaire\n"
        "3. Ou attendre la reconnexion automatique"
    ),
    AlertKind.TIMEOUT_AND_REBOOT_FAILED: (
        "❌ *TIMEOUT + REBOOT ÉCHOUÉ*\n\n"
        "Erreur: {error}\n"
        "Temps réponse: {response_time_ms}ms\n\n"
        "⚠️ *ACTION REQUISE:*\n"
        "1. L'instance ne répond plus\n"
        "2. Reboot automatique a échoué\n"
        "3. Intervention manuelle critique"
    ),
    AlertKind.COMPLETE_FAILURE: (
        "🔴 *ÉCHEC COMPLET DU SYSTÈME*\n\n"
        "Erreur: {error}\n\n"
        "⚠️ *ACTION IMMÉDIATE REQUISE:*\n"
        "1. Instance complètement inaccessible\n"
        "2. Reboot impossible\n"
        "3. Vérifier dashboard Green API\n"
        "4. Contact support Green API si nécessaire"
    ),
    AlertKind.CONFIGURATION_ERROR: (
        "🔧 *ERREUR DE CONFIGURATION*\n\n"
        "Erreur: {error}\n\n"
        "ℹ️ *PAS DE REBOOT AUTOMATIQUE*\n"
        "Un reboot ne corrige pas la configuration\n\n"
        "⚠️ *ACTION REQUISE:*\n"
        "{fix}"
    ),
    AlertKind.INVALID_RESPONSE: (
        "⚠️ *RÉPONSE INVALIDE DE L'API*\n\n"
        "Erreur: {error}\n"
        "Temps réponse: {response_time_ms}ms\n\n"
        "ℹ️ *PAS DE REBOOT AUTOMATIQUE*\n\n"
        "⚠️ *ACTION SUGGÉRÉE:*\n"
        "1. Vérifier le dashboard Green API\n"
        "2. Contacter le support Green API si cela persiste"
    ),
    AlertKind.REBOOT_REFUSED: (
        "🔄 *REBOOT {origin} REFUSÉ*\n\n"
        "Erreur: {error}\n\n"
        "⚠️ *ACTION REQUISE:*\n"
        "1. Vérifier le dashboard Green API\n"
        "2. Relancer le reboot si nécessaire"
    ),
    AlertKind.REBOOT_ERROR: (
        "❌ *ÉCHEC DU REBOOT {origin}*\n\n"
        "Erreur: {error}\n\n"
        "⚠️ *ACTION REQUISE:*\n"
        "1. La demande de reboot n'a pas abouti\n"
        "2. Vérifier le dashboard Green API\n"
        "3. Contacter le support Green API si cela persiste"
    ),
    AlertKind.REBOOT_NOT_BACK: (
        "⏳ *INSTANCE NON REVENUE APRÈS REBOOT {origin}*\n\n"
        "État détecté: {state}\n"
        "Erreur: {error}\n\n"
        "⚠️ *ACTION REQUISE:*\n"
        "1. Vérifier le dashboard Green API\n"
        "2. Rebooter à nouveau ou contacter le support Green API"
    ),
    AlertKind.REBOOT_NEEDS_RELINK: (
        "📵 *RECONNEXION WHATSAPP NÉCESSAIRE*\n\n"
        "État détecté: {state}\n"
        "Erreur: {error}\n\n"
        "⚠️ *ACTION REQUISE:*\n"
        "1. Ouvrir le dashboard Green API\n"
        "2. Scanner le QR code pour relier WhatsApp"
    ),
    AlertKind.REBOOT_LOOP: (
        "🔁 *BOUCLE DE REBOOTS*\n\n"
        "Erreur: {error}\n\n"
        "ℹ️ *REBOOTS AUTOMATIQUES SUSPENDUS*\n\n"
        "⚠️ *ACTION REQUISE:*\n"
        "1. Vérifier le dashboard Green API\n"
        "2. Contacter le support Green API"
    ),
    AlertKind.SETTINGS_DRIFT: (
        "⚙️ *RÉGLAGES DE L'INSTANCE MODIFIÉS*\n\n"
        "État détecté: {state}\n"
        "Écart: {error}\n\n"
        "ℹ️ *PAS DE REBOOT AUTOMATIQUE*\n"
        "Le bot ne reçoit peut-être plus les messages (webhook)\n\n"
        "⚠️ *ACTION REQUISE:*\n"
        "1. Ouvrir les réglages de l'instance dans la console Green API\n"
        "2. Rétablir les valeurs attendues"
    ),
    AlertKind.OUTGOING_QUEUE_STUCK: (
        "📤 *FILE D'ENVOI BLOQUÉE*\n\n"
        "État détecté: {state}\n"
        "File: {error}\n\n"
        "ℹ️ Les messages attendent jusqu'à 24 h puis sont perdus\n\n"
        "⚠️ *ACTION SUGGÉRÉE:*\n"
        "1. Vérifier le dashboard Green API\n"
        "2. Rebooter l'instance si la file ne baisse pas"
    ),
    AlertKind.SOCKET_OFFLINE: (
        "📡 *SOCKET WHATSAPP HORS LIGNE*\n\n"
        "État détecté: {state}\n"
        "Erreur: {error}\n\n"
        "ℹ️ *PAS DE REBOOT AUTOMATIQUE*\n"
        "L'instance ne peut ni envoyer ni recevoir\n\n"
        "⚠️ *ACTION SUGGÉRÉE:*\n"
        "1. Vérifier le téléphone (internet, WhatsApp ouvert)\n"
        "2. Vérifier le dashboard Green API\n"
        "3. Rebooter l'instance si cela persiste"
    ),
    AlertKind.PLATFORM_OUTAGE: (
        "🌩️ *PANNE DE LA PLATEFORME GREEN API*\n\n"
        "Symptôme: {state}\n"
        "Instances touchées: {error}\n\n"
        "ℹ️ *PAS DE REBOOT AUTOMATIQUE*\n"
        "Un reboot n'aide pas quand l'hôte est en panne\n\n"
        "⚠️ *ACTION SUGGÉRÉE:*\n"
        "1. Vérifier l'état de Green API pour cet hôte\n"
        "2. Vérifier le réseau du moniteur\n"
        "3. Contacter le support Green API si cela persiste"
    ),
    AlertKind.INSTANCE_EXPIRING: (
        "📅 *ABONNEMENT BIENTÔT EXPIRÉ*\n\n"
        "État détecté: {state}\n"
        "Échéance: {error}\n\n"
        "ℹ️ *PAS DE REBOOT AUTOMATIQUE*\n"
        "À l'échéance, l'instance cesse de fonctionner\n\n"
        "⚠️ *ACTION SUGGÉRÉE:*\n"
        "1. Prolonger l'abonnement dans la console partenaire Green API\n"
        "2. Ou prévenir le client concerné"
    ),
    AlertKind.INSTANCE_EXPIRED: (
        "⛔ *ABONNEMENT EXPIRÉ*\n\n"
        "État détecté: {state}\n"
        "Erreur: {error}\n\n"
        "ℹ️ *PAS DE REBOOT AUTOMATIQUE*\n"
        "Un reboot ne relance pas une instance expirée\n\n"
        "⚠️ *ACTION REQUISE:*\n"
        "1. Régler ou prolonger l'abonnement dans la console partenaire Green API\n"
        "2. Vérifier ensuite que l'instance est autorisée"
    ),
}

ORIGINS = {"scheduled": "PLANIFIÉ", "manual": "MANUEL", "automatic": "AUTOMATIQUE"}

HEADER_EN = "🚨 *GREEN API ALERT* 🚨\n\n⏰ {time}\n📱 Instance: {instance_id}\n\n"
FOOTER_EN = "\n\n🔗 Dashboard: {dashboard_url}"
ORIGINS_EN = {"scheduled": "SCHEDULED", "manual": "MANUAL", "automatic": "AUTOMATIC"}

BODIES_EN: dict[AlertKind, str] = {
    AlertKind.INSTANCE_NOT_AUTHORIZED: (
        "⚠️ *INSTANCE NOT AUTHORIZED*\n\nState: {state}\nError: {error}\n\n"
        "ℹ️ *NO AUTOMATIC REBOOT*\nA reboot disconnects WhatsApp (QR scan needed)\n\n"
        "⚠️ *SUGGESTED ACTION:*\n1. Check the Green API dashboard\n2. Re-link WhatsApp if needed\n"
        "3. Or wait for it to reconnect by itself"
    ),
    AlertKind.TIMEOUT_AND_REBOOT_FAILED: (
        "❌ *TIMEOUT + REBOOT FAILED*\n\nError: {error}\nResponse time: {response_time_ms}ms\n\n"
        "⚠️ *ACTION REQUIRED:*\n1. The instance no longer answers\n2. The automatic reboot failed\n"
        "3. Urgent manual intervention"
    ),
    AlertKind.COMPLETE_FAILURE: (
        "🔴 *COMPLETE FAILURE*\n\nError: {error}\n\n"
        "⚠️ *IMMEDIATE ACTION REQUIRED:*\n1. Instance completely unreachable\n2. Reboot impossible\n"
        "3. Check the Green API dashboard\n4. Contact Green API support if needed"
    ),
    AlertKind.CONFIGURATION_ERROR: (
        "🔧 *CONFIGURATION ERROR*\n\nError: {error}\n\nℹ️ *NO AUTOMATIC REBOOT*\n"
        "A reboot does not fix the configuration\n\n⚠️ *ACTION REQUIRED:*\n{fix}"
    ),
    AlertKind.INVALID_RESPONSE: (
        "⚠️ *INVALID API RESPONSE*\n\nError: {error}\nResponse time: {response_time_ms}ms\n\n"
        "ℹ️ *NO AUTOMATIC REBOOT*\n\n⚠️ *SUGGESTED ACTION:*\n1. Check the Green API dashboard\n"
        "2. Contact Green API support if it persists"
    ),
    AlertKind.REBOOT_REFUSED: (
        "🔄 *{origin} REBOOT REFUSED*\n\nError: {error}\n\n"
        "⚠️ *ACTION REQUIRED:*\n1. Check the Green API dashboard\n2. Reboot again if needed"
    ),
    AlertKind.REBOOT_ERROR: (
        "❌ *{origin} REBOOT FAILED*\n\nError: {error}\n\n⚠️ *ACTION REQUIRED:*\n"
        "1. The reboot request did not go through\n2. Check the Green API dashboard\n"
        "3. Contact Green API support if it persists"
    ),
    AlertKind.REBOOT_NOT_BACK: (
        "⏳ *INSTANCE NOT BACK AFTER {origin} REBOOT*\n\nState: {state}\nError: {error}\n\n"
        "⚠️ *ACTION REQUIRED:*\n1. Check the Green API dashboard\n2. Reboot again or contact Green API support"
    ),
    AlertKind.REBOOT_NEEDS_RELINK: (
        "📵 *WHATSAPP MUST BE LINKED AGAIN*\n\nState: {state}\nError: {error}\n\n"
        "⚠️ *ACTION REQUIRED:*\n1. Open the Green API dashboard\n2. Scan the QR code to link WhatsApp"
    ),
    AlertKind.REBOOT_LOOP: (
        "🔁 *REBOOT LOOP*\n\nError: {error}\n\nℹ️ *AUTOMATIC REBOOTS STOPPED*\n\n"
        "⚠️ *ACTION REQUIRED:*\n1. Check the Green API dashboard\n2. Contact Green API support"
    ),
    AlertKind.SETTINGS_DRIFT: (
        "⚙️ *INSTANCE SETTINGS CHANGED*\n\nState: {state}\nDifference: {error}\n\n"
        "ℹ️ *NO AUTOMATIC REBOOT*\nThe bot may no longer receive messages (webhook)\n\n"
        "⚠️ *ACTION REQUIRED:*\n1. Open the instance's settings in the Green API console\n"
        "2. Restore the expected values"
    ),
    AlertKind.OUTGOING_QUEUE_STUCK: (
        "📤 *OUTGOING QUEUE STUCK*\n\nState: {state}\nQueue: {error}\n\n"
        "ℹ️ Messages wait up to 24 h, then are dropped\n\n"
        "⚠️ *SUGGESTED ACTION:*\n1. Check the Green API dashboard\n2. Reboot the instance if the queue does not go down"
    ),
    AlertKind.SOCKET_OFFLINE: (
        "📡 *WHATSAPP SOCKET OFFLINE*\n\nState: {state}\nError: {error}\n\n"
        "ℹ️ *NO AUTOMATIC REBOOT*\nThe instance can neither send nor receive\n\n"
        "⚠️ *SUGGESTED ACTION:*\n1. Check the phone (internet, WhatsApp open)\n2. Check the Green API dashboard\n"
        "3. Reboot the instance if it persists"
    ),
    AlertKind.PLATFORM_OUTAGE: (
        "🌩️ *GREEN API PLATFORM OUTAGE*\n\nSymptom: {state}\nInstances affected: {error}\n\n"
        "ℹ️ *NO AUTOMATIC REBOOT*\nA reboot does not help while the host is down\n\n"
        "⚠️ *SUGGESTED ACTION:*\n1. Check Green API's status for this host\n2. Check the monitor's network\n"
        "3. Contact Green API support if it persists"
    ),
    AlertKind.INSTANCE_EXPIRING: (
        "📅 *SUBSCRIPTION ENDING SOON*\n\nState: {state}\nEnds: {error}\n\n"
        "ℹ️ *NO AUTOMATIC REBOOT*\nWhen it ends, the instance stops working\n\n"
        "⚠️ *SUGGESTED ACTION:*\n1. Extend the subscription in the Green API partner console\n"
        "2. Or tell the customer concerned"
    ),
    AlertKind.INSTANCE_EXPIRED: (
        "⛔ *SUBSCRIPTION EXPIRED*\n\nState: {state}\nError: {error}\n\n"
        "ℹ️ *NO AUTOMATIC REBOOT*\nA reboot does not bring back an expired instance\n\n"
        "⚠️ *ACTION REQUIRED:*\n1. Pay or extend the subscription in the Green API partner console\n"
        "2. Then check that the instance is authorized"
    ),
}

LANGUAGES = ("fr", "en")

TIME_FORMAT = "%d/%m/%Y %H:%M:%S"


@dataclass(frozen=True)
class AlertFacts:
    """What an alert message says about one check."""

    kind: AlertKind
    instance_id: str
    checked_at: datetime
    dashboard_url: str
    state: str | None = None
    error: str | None = None
    response_time_ms: int | None = None
    fix: str | None = None
    origin: str = "automatic"  # what asked for a reboot: automatic, scheduled or manual
    name: str | None = None  # how people call the instance (its connection's description, its partner name)


def labelled(instance_id: str, name: str | None) -> str:
    """An instance as the messages name it: its id, then its name when it has one."""
    return f"{instance_id} ({name})" if name else instance_id


def format_time(moment: datetime, timezone: str, fmt: str = TIME_FORMAT) -> str:
    """dd/mm/yyyy HH:MM:SS in the messages' timezone, and the zone's name (``15/01/2026 08:13:05 CET``)."""
    local = moment.astimezone(ZoneInfo(timezone))
    return f"{local.strftime(fmt)} {zone_name(local)}"


def zone_name(local: datetime) -> str:
    """The zone's abbreviation at that moment (CET, CEST, UTC, EST); ``UTC-03`` where the zone has
    none but its offset (America/Sao_Paulo)."""
    name = local.strftime("%Z")
    return f"UTC{name}" if name[:1] in "+-" else name


CRITICAL_MARK = {"fr": "🔴 *CRITIQUE*\n\n", "en": "🔴 *CRITICAL*\n\n"}
# Appended to an alert sent while the health database is unreachable (no incident tracking).
UNTRACKED_NOTE = {
    "fr": "\n\nℹ️ Base de suivi injoignable : alerte envoyée aux contacts de secours, sans suivi d'incident.",
    "en": "\n\nℹ️ Health database unreachable: alert sent to the fallback contacts, without incident tracking.",
}


# A platform outage's messages name its API host where an instance's name the instance.
HOST_LINE = {"fr": "🌐 Hôte: {instance_id}", "en": "🌐 Host: {instance_id}"}
INSTANCE_LINE = "📱 Instance: {instance_id}"


def _about(template: str, kind: AlertKind, language: str) -> str:
    return template.replace(INSTANCE_LINE, HOST_LINE[language]) if kind is AlertKind.PLATFORM_OUTAGE else template


def render_alert(facts: AlertFacts, timezone: str, language: str = "fr", critical: bool = False) -> str:
    """The full WhatsApp text of one alert (the first message of an incident). For a platform
    outage, ``instance_id`` is its API host."""
    english = language == "en"
    mark = CRITICAL_MARK[language] if critical else ""
    header = _about(HEADER_EN if english else HEADER, facts.kind, language)
    template = header + mark + (BODIES_EN if english else BODIES)[facts.kind]
    template += FOOTER_EN if english else FOOTER
    origins = ORIGINS_EN if english else ORIGINS
    return template.format(
        time=format_time(facts.checked_at, timezone),
        instance_id=facts.instance_id if facts.kind is AlertKind.PLATFORM_OUTAGE else labelled(facts.instance_id, facts.name),
        state="null" if facts.state is None else facts.state,
        error=facts.error or "-",
        response_time_ms=facts.response_time_ms if facts.response_time_ms is not None else "-",
        fix=facts.fix or "-",
        origin=origins.get(facts.origin, facts.origin.upper()),
        dashboard_url=facts.dashboard_url,
    )


KIND_LABELS = {
    "fr": {
        AlertKind.INSTANCE_NOT_AUTHORIZED: "instance non autorisée",
        AlertKind.TIMEOUT_AND_REBOOT_FAILED: "timeout + reboot échoué",
        AlertKind.COMPLETE_FAILURE: "instance injoignable",
        AlertKind.CONFIGURATION_ERROR: "erreur de configuration",
        AlertKind.INVALID_RESPONSE: "réponse invalide de l'API",
        AlertKind.REBOOT_REFUSED: "reboot refusé",
        AlertKind.REBOOT_ERROR: "échec du reboot",
        AlertKind.REBOOT_NOT_BACK: "instance non revenue après reboot",
        AlertKind.REBOOT_NEEDS_RELINK: "reconnexion WhatsApp nécessaire",
        AlertKind.REBOOT_LOOP: "boucle de reboots",
        AlertKind.SETTINGS_DRIFT: "réglages de l'instance modifiés",
        AlertKind.OUTGOING_QUEUE_STUCK: "file d'envoi bloquée",
        AlertKind.SOCKET_OFFLINE: "socket WhatsApp hors ligne",
        AlertKind.PLATFORM_OUTAGE: "panne de la plateforme",
        AlertKind.INSTANCE_EXPIRING: "abonnement bientôt expiré",
        AlertKind.INSTANCE_EXPIRED: "abonnement expiré",
    },
    "en": {
        AlertKind.INSTANCE_NOT_AUTHORIZED: "instance not authorized",
        AlertKind.TIMEOUT_AND_REBOOT_FAILED: "timeout + reboot failed",
        AlertKind.COMPLETE_FAILURE: "instance unreachable",
        AlertKind.CONFIGURATION_ERROR: "configuration error",
        AlertKind.INVALID_RESPONSE: "invalid API response",
        AlertKind.REBOOT_REFUSED: "reboot refused",
        AlertKind.REBOOT_ERROR: "reboot failed",
        AlertKind.REBOOT_NOT_BACK: "instance not back after reboot",
        AlertKind.REBOOT_NEEDS_RELINK: "WhatsApp must be linked again",
        AlertKind.REBOOT_LOOP: "reboot loop",
        AlertKind.SETTINGS_DRIFT: "instance settings changed",
        AlertKind.OUTGOING_QUEUE_STUCK: "outgoing queue stuck",
        AlertKind.SOCKET_OFFLINE: "WhatsApp socket offline",
        AlertKind.PLATFORM_OUTAGE: "platform outage",
        AlertKind.INSTANCE_EXPIRING: "subscription ending soon",
        AlertKind.INSTANCE_EXPIRED: "subscription expired",
    },
}

# What a course's problem that is no alert kind is called: a check an automatic reboot set right.
_PROBLEM_WORDS = {"fr": {NO_ANSWER: "pas de réponse", STATE_PREFIX: "état {state}"},
                  "en": {NO_ANSWER: "no answer", STATE_PREFIX: "state {state}"}}  # fmt: skip
_COURSE_WORDS = {
    "fr": {"title": "\n\nDéroulé:", "reboot_ok": "reboot automatique, réussi", "reboot_failed": "reboot automatique, échoué",
           "back": "{time}: rétablie"},
    "en": {"title": "\n\nCourse:", "reboot_ok": "automatic reboot, successful", "reboot_failed": "automatic reboot, failed",
           "back": "{time}: back"},
}  # fmt: skip


def problem_label(problem: str, language: str) -> str:
    """How a course's problem is called: its alert kind's label, ``pas de réponse``, ``état starting``."""
    if problem.startswith(STATE_PREFIX):
        return _PROBLEM_WORDS[language][STATE_PREFIX].format(state=problem.removeprefix(STATE_PREFIX))
    if problem in _PROBLEM_WORDS[language]:
        return _PROBLEM_WORDS[language][problem]
    try:
        return KIND_LABELS[language][AlertKind(problem)]
    except ValueError:
        return problem


def course_of(incident: Incident) -> tuple[Episode, ...]:
    """The problems ``incident`` went through; for one stored before they were kept, its own, as opened."""
    if incident.course:
        return incident.course
    return (Episode(incident.kind.value, incident.started, incident.last_state),)


def render_course(incident: Incident, timezone: str, language: str) -> str:
    """The lines that tell an incident's course (empty for one problem with no reboot): each
    problem in order, when it was first seen (``08:13 CET``), its state, and the automatic reboot
    made about it; then when the instance was back."""
    course = course_of(incident)
    if len(course) < 2 and all(e.reboot_ok is None for e in course):
        return ""
    words = _COURSE_WORDS[language]
    day = incident.started.astimezone(ZoneInfo(timezone)).date()

    def short(moment: datetime) -> str:
        same_day = moment.astimezone(ZoneInfo(timezone)).date() == day
        return format_time(moment, timezone, "%H:%M" if same_day else "%d/%m %H:%M")

    lines = [words["title"]]
    for n, episode in enumerate(course, 1):
        label = problem_label(episode.problem, language)
        if episode.state and not episode.problem.startswith(STATE_PREFIX):
            label += f" ({episode.state})"
        done = (_FOLLOW_UP[language]["no_reboot"] if episode.reboot_ok is None
                else words["reboot_ok" if episode.reboot_ok else "reboot_failed"])  # fmt: skip
        lines.append(f"{n}. {short(episode.at)}: {label}; {done}")
    if incident.ended is not None:
        lines.append(f"{len(course) + 1}. " + words["back"].format(time=short(incident.ended)))
    return "\n".join(lines)


def course_labels(incident: Incident, language: str) -> str:
    """An incident's problems in one line, in order (``instance non autorisée → pas de réponse``)."""
    labels: list[str] = []
    for episode in course_of(incident):
        label = problem_label(episode.problem, language)
        if not labels or labels[-1] != label:
            labels.append(label)
    return " → ".join(labels)


_FOLLOW_UP = {
    "fr": {
        "reminder": "🔁 *RAPPEL: INCIDENT EN COURS*\n\nProblème: {label}\nDepuis: {duration} (ouvert le {opened})\n"
        "Dernier état: {state}\nDernière erreur: {error}\nReboots: {reboots}",
        "resolution": "✅ *INCIDENT RÉSOLU*\n\nProblème: {label}\nDurée totale: {duration} (du {opened} au {resolved})\n"
        "Actions: {actions}",
        "escalation": "⬆️ *ESCALADE (niveau {level})*\nIncident toujours en cours depuis {duration}.\n\n",
        "header": "🚨 *ALERTE GREEN API* 🚨\n\n⏰ {time}\n📱 Instance: {instance_id}\n\n",
        "resolved_header": "✅ *GREEN API* ✅\n\n⏰ {time}\n📱 Instance: {instance_id}\n\n",
        "footer": "\n\n🔗 Dashboard: {dashboard_url}",
        "no_reboot": "aucun reboot",
        "reboots": "{n} reboot(s) automatique(s), {ok} réussi(s)",
    },
    "en": {
        "reminder": "🔁 *REMINDER: INCIDENT ONGOING*\n\nProblem: {label}\nFor: {duration} (opened {opened})\n"
        "Last state: {state}\nLast error: {error}\nReboots: {reboots}",
        "resolution": "✅ *INCIDENT RESOLVED*\n\nProblem: {label}\nTotal downtime: {duration} (from {opened} to {resolved})\n"
        "Actions: {actions}",
        "escalation": "⬆️ *ESCALATION (level {level})*\nIncident still ongoing after {duration}.\n\n",
        "header": "🚨 *GREEN API ALERT* 🚨\n\n⏰ {time}\n📱 Instance: {instance_id}\n\n",
        "resolved_header": "✅ *GREEN API* ✅\n\n⏰ {time}\n📱 Instance: {instance_id}\n\n",
        "footer": "\n\n🔗 Dashboard: {dashboard_url}",
        "no_reboot": "no reboot",
        "reboots": "{n} automatic reboot(s), {ok} successful",
    },
}


def _actions(reboots: int, reboots_ok: int, words: dict[str, str]) -> str:
    return words["reboots"].format(n=reboots, ok=reboots_ok) if reboots else words["no_reboot"]


def render_follow_up(
    kind: str,
    incident: Incident,
    *,
    checked_at: datetime,
    dashboard_url: str,
    timezone: str,
    language: str = "fr",
    level: int = 1,
    opening_text: str = "",
    about: str | None = None,
    extra: str = "",
    name: str | None = None,
) -> str:
    """A reminder, an escalation (wrapping the opening text) or a resolution message.

    ``about``: what the header names (default the incident's instance id, with ``name``; a platform
    outage's host); ``extra``: lines added at the end of the body (an outage's resolution: who recovered).

    Every time shown is a real check time: ``checked_at`` (the header) is when the check this
    message reports on was made; the outage runs from the incident's first failing check to its
    first healthy one (or to ``checked_at`` while it lasts), and its duration is computed from them.
    """
    words = _FOLLOW_UP[language]
    ended = incident.ended
    duration = format_duration((ended or checked_at) - incident.started, language)
    if kind == "escalation":
        return words["escalation"].format(level=level, duration=duration) + opening_text
    header = _about(words["resolved_header" if kind == "resolution" else "header"], incident.kind, language)
    body = words[kind].format(
        label=KIND_LABELS[language][incident.kind] if kind != "resolution" else course_labels(incident, language),
        duration=duration,
        opened=format_time(incident.started, timezone),
        resolved=format_time(ended or checked_at, timezone),
        state="null" if incident.last_state is None else incident.last_state,
        error=incident.last_error or "-",
        reboots=incident.reboots,
        actions=_actions(incident.reboots, incident.reboots_ok, words),
    )
    if kind == "resolution" and incident.kind is not AlertKind.PLATFORM_OUTAGE:
        extra = render_course(incident, timezone, language) + extra
    extra = extra.replace("{", "{{").replace("}", "}}")
    return (header + body + extra + words["footer"]).format(
        time=format_time(checked_at, timezone), instance_id=about or labelled(incident.instance_id, name),
        dashboard_url=dashboard_url,
    )


# ---- grouped messages: one per contact and kind of notice when a run has many


_GROUP = {
    "fr": {
        "opening": "📋 *{n} NOUVEAUX INCIDENTS*",
        "escalation": "⬆️ *ESCALADE: {n} INCIDENTS TOUJOURS EN COURS*",
        "reminder": "🔁 *RAPPEL: {n} INCIDENTS EN COURS*",
        "resolution": "✅ *{n} INCIDENTS RÉSOLUS*",
        "open_line": "• {instance_id}: {label} (depuis {started}, {duration})",
        "resolved_line": "• {instance_id}: {label} ({duration}, du {started} au {ended})",
        "more": "… et {n} autres (voir le dashboard)",
        "header": "🚨 *ALERTE GREEN API* 🚨\n\n⏰ {time}\n\n",
        "resolved_header": "✅ *GREEN API* ✅\n\n⏰ {time}\n\n",
    },
    "en": {
        "opening": "📋 *{n} NEW INCIDENTS*",
        "escalation": "⬆️ *ESCALATION: {n} INCIDENTS STILL ONGOING*",
        "reminder": "🔁 *REMINDER: {n} INCIDENTS ONGOING*",
        "resolution": "✅ *{n} INCIDENTS RESOLVED*",
        "open_line": "• {instance_id}: {label} (since {started}, {duration})",
        "resolved_line": "• {instance_id}: {label} ({duration}, from {started} to {ended})",
        "more": "… and {n} more (see the dashboard)",
        "header": "🚨 *GREEN API ALERT* 🚨\n\n⏰ {time}\n\n",
        "resolved_header": "✅ *GREEN API* ✅\n\n⏰ {time}\n\n",
    },
}
GROUP_LINES = 40  # instances listed in one grouped message; the others are counted


def render_group(kind: str, incidents: list[Incident], *, checked_at: datetime, dashboard_url: str, timezone: str,
                 language: str = "fr", names: Mapping[str, str | None] | None = None) -> str:  # fmt: skip
    """One message for many notices of one kind (``opening``, ``escalation``, ``reminder``,
    ``resolution``): each incident's instance (with its name, from ``names``), problem and since
    when (or how long it lasted)."""
    names = names or {}
    words = _GROUP[language]
    lines = []
    for incident in incidents[:GROUP_LINES]:
        ended = incident.ended
        line = words["resolved_line" if ended else "open_line"]
        outage = incident.kind is AlertKind.PLATFORM_OUTAGE  # its key is no instance: what it is, said
        lines.append(line.format(
            instance_id=incident.last_error if outage else labelled(incident.instance_id, names.get(incident.instance_id)),
            label=KIND_LABELS[language][incident.kind] if outage else course_labels(incident, language),
            started=format_time(incident.started, timezone), ended=format_time(ended, timezone) if ended else "",
            duration=format_duration((ended or checked_at) - incident.started, language),
        ))  # fmt: skip
    if len(incidents) > GROUP_LINES:
        lines.append(words["more"].format(n=len(incidents) - GROUP_LINES))
    header = words["resolved_header" if kind == "resolution" else "header"].format(time=format_time(checked_at, timezone))
    footer = _FOLLOW_UP[language]["footer"].format(dashboard_url=dashboard_url)
    return header + words[kind].format(n=len(incidents)) + "\n\n" + "\n".join(lines) + footer
