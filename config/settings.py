"""Handoff settings: all from the environment, read here and nowhere else.

See README.md for the table of variables. Unset means the single-process default (embedded
PostgreSQL, in-memory channel layer, local embeddings); set-but-malformed always fails loudly.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from urllib.parse import urlsplit

from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from config.database import database_from_url, embedded_database
from config.env import env_bool, env_int, env_list, env_str, local_url

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("HANDOFF_DATA_DIR") or BASE_DIR / ".data").resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", False)


def _secret_key() -> str:
    key = env_str("SECRET_KEY")
    if key:
        return key
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it (e.g. `python -c 'import secrets; "
            "print(secrets.token_urlsafe(50))'`), or set DEBUG=1 for local development."
        )
    # Local development: one random key per data folder, so sessions survive restarts and no
    # secret ever lives in the repository.
    path = DATA_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
# Where `manage.py serve` listens (`make run`): HOST and PORT, or its --host and --port.
HOST = env_str("HOST", "127.0.0.1")
PORT = env_int("PORT", 8000, minimum=1, maximum=65535)


def _site_url() -> str:
    url = env_str("SITE_URL").rstrip("/")
    if not url:
        # Unset: the address serve listens on (serve passes its --port to its children here),
        # so a server on port 8200 never hands out links and snippets that say 8000.
        return local_url(HOST, PORT)
    if not url.startswith(("http://", "https://")) or not urlsplit(url).hostname:
        raise ImproperlyConfigured(
            f"SITE_URL must be an absolute http(s) URL such as https://support.example.com; "
            f"got {url!r}."
        )
    return url


# The public URL: e-mail links (invitations, notifications) and the widget snippets.
SITE_URL = _site_url()
# /healthz tells anyone ok or not; its details (versions, errors) need this bearer token or staff.
HEALTHZ_TOKEN = env_str("HEALTHZ_TOKEN")

INSTALLED_APPS = [
    "daphne",  # first: its runserver serves HTTP and WebSocket in one process
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "channels",
    "django_htmx",
    "template_partials",
    "django_q",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.google",
    "csp",
    # The audit log's row history (audit/): Postgres triggers, and the events they write.
    "pgtrigger",
    "pghistory",
    "config",
    "bots",
    "conversations",
    "knowledge",
    "actions",
    "escalation",
    "audit",
    "chat",
    "analytics",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.csp.CSPMiddleware",  # django-csp's, with a nonce and this server's sockets
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "audit.middleware.AuditContextMiddleware",  # who and from where, for the audit log
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    }
]

# --- Database: DATABASE_URL, else embedded PostgreSQL 18 + pgvector --------------------------
DATABASE_URL = env_str("DATABASE_URL")
DATABASES = {
    "default": database_from_url(DATABASE_URL) if DATABASE_URL else embedded_database(DATA_DIR)
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "bots.User"

# --- Redis: channel layer and cache across processes -----------------------------------------
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL and not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured(
        f"REDIS_URL must start with redis://, rediss:// or unix://; got {REDIS_URL!r}."
    )

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py 8 reads with a 5 s socket timeout by default, the same 5 s that
                # channels-redis blocks in BZPOPMIN waiting for a message: a socket idle for 5 s
                # lost the race and its consumer died with "Timeout reading". Reads may wait
                # well past the blocking pop; a dead server is still noticed within 30 s.
                "hosts": [{"address": REDIS_URL, "socket_timeout": 30}],
                "capacity": 1500,
                "expiry": 60,
            },
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "handoff",
        }
    }
else:
    # Only reaches sockets of this process: the single-process default. Pushes must then start in
    # the web process; work done by the worker shows up through the database (pages poll).
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Background work: django-q2 on the ORM broker (no extra service) --------------------------
Q_CLUSTER = {
    "name": "handoff",
    "orm": "default",
    "workers": env_int("WORKER_PROCESSES", 2, minimum=1, maximum=64),
    "timeout": 600,
    "retry": 660,  # must exceed timeout, or a long task is started twice
    "max_attempts": 3,
    "catch_up": False,
    "save_limit": 500,
    "label": "Background tasks",
}

# --- Accounts: e-mail + password, Google when configured --------------------------------------
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_SIGNUP_FORM_CLASS = "bots.forms.SignupForm"
ACCOUNT_USER_MODEL_USERNAME_FIELD = "username"
ACCOUNT_EMAIL_VERIFICATION = env_str("ACCOUNT_EMAIL_VERIFICATION", "optional")
if ACCOUNT_EMAIL_VERIFICATION not in {"none", "optional", "mandatory"}:
    raise ImproperlyConfigured("ACCOUNT_EMAIL_VERIFICATION must be none, optional or mandatory.")
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_SESSION_REMEMBER = True
SOCIALACCOUNT_ONLY = False

GOOGLE_CLIENT_ID = env_str("GOOGLE_CLIENT_ID")
GOOGLE_CLIENT_SECRET = env_str("GOOGLE_CLIENT_SECRET")
if bool(GOOGLE_CLIENT_ID) != bool(GOOGLE_CLIENT_SECRET):
    raise ImproperlyConfigured("Set both GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET, or neither.")
SOCIALACCOUNT_PROVIDERS = {
    "google": {
        "SCOPE": ["profile", "email"],
        "AUTH_PARAMS": {"access_type": "online"},
        # Apps from settings: no database row to forget, and the button shows only when set.
        "APPS": (
            [{"client_id": GOOGLE_CLIENT_ID, "secret": GOOGLE_CLIENT_SECRET, "key": ""}]
            if GOOGLE_CLIENT_ID
            else []
        ),
    }
}
SOCIALACCOUNT_EMAIL_AUTHENTICATION = True
SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT = True

# --- E-mail -----------------------------------------------------------------------------------
EMAIL_HOST = env_str("EMAIL_HOST")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1, maximum=65535)
    EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
    EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
else:
    # No mail server configured: mails are printed by the web process, never lost silently.
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Handoff <handoff@localhost>")
# Seconds an SMTP connection may stall: a notification is sent under its row's lock.
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 20, minimum=1, maximum=300)

# --- Notifications to agents (escalation/notifications.py) ---------------------------------------
# Attempts per e-mail or webhook post before it gives up; retries wait 1, 2, 4, 8 … minutes.
NOTIFY_MAX_ATTEMPTS = env_int("NOTIFY_MAX_ATTEMPTS", 6, minimum=1, maximum=20)
# Off by default, like KNOWLEDGE_FETCH_PRIVATE_NETWORKS: any owner can set a webhook URL, and
# the worker posting to internal addresses would let a tenant probe this instance's network.
NOTIFY_WEBHOOK_PRIVATE_NETWORKS = env_bool("NOTIFY_WEBHOOK_PRIVATE_NETWORKS", False)

# --- Knowledge: embeddings -----------------------------------------------------------------------
# The default runs offline on the CPU; `openai:<model>` uses an OpenAI-compatible endpoint.
EMBEDDING_MODEL = env_str("EMBEDDING_MODEL", "local:all-MiniLM-L6-v2")
EMBEDDING_API_BASE = env_str("EMBEDDING_API_BASE") or env_str("OPENAI_BASE_URL")
EMBEDDING_API_KEY = env_str("EMBEDDING_API_KEY") or env_str("OPENAI_API_KEY")
# Load the local model in the background on a web process's first widget connection.
EMBEDDING_PRELOAD = env_bool("EMBEDDING_PRELOAD", True)
EMBEDDING_THREADS = env_int("EMBEDDING_THREADS", 0, minimum=0, maximum=64)  # 0: torch's default
# Per-bot domain adapters (knowledge/adaptation.py): the worker fine-tunes a copy of the local
# model on a bot's articles (a minute or two of CPU per change) and retrieval uses both.
KNOWLEDGE_ADAPTER = env_bool("KNOWLEDGE_ADAPTER", True)
KNOWLEDGE_ADAPTER_MIN_ARTICLES = env_int("KNOWLEDGE_ADAPTER_MIN_ARTICLES", 20, minimum=2)
KNOWLEDGE_ADAPTER_CACHE = env_int("KNOWLEDGE_ADAPTER_CACHE", 4, minimum=1, maximum=64)

# --- Knowledge: reading uploads (knowledge/parsers/, knowledge/isolation.py) -------------------
# What reading one file may cost, in the worker's child process: a few KB of PDF can expand into
# megabytes of drawing instructions that take minutes to walk. Past a limit the file is refused
# with the reason, and the source's previous version keeps serving.
# At most half the worker task's timeout (Q_CLUSTER): the sync still has to embed what was read.
KNOWLEDGE_PARSE_SECONDS = env_int("KNOWLEDGE_PARSE_SECONDS", 60, minimum=1, maximum=300)
KNOWLEDGE_PARSE_MAX_PAGES = env_int("KNOWLEDGE_PARSE_MAX_PAGES", 1000, minimum=1)
KNOWLEDGE_PARSE_MAX_PAGE_MB = env_int("KNOWLEDGE_PARSE_MAX_PAGE_MB", 1, minimum=1, maximum=1024)
KNOWLEDGE_PARSE_MAX_EXPANDED_MB = env_int("KNOWLEDGE_PARSE_MAX_EXPANDED_MB", 32, minimum=1)
KNOWLEDGE_PARSE_MAX_TEXT_MB = env_int("KNOWLEDGE_PARSE_MAX_TEXT_MB", 20, minimum=1)

# --- Knowledge: web page and sitemap sources (knowledge/web.py) -------------------------------
KNOWLEDGE_SITEMAP_MAX_PAGES = env_int("KNOWLEDGE_SITEMAP_MAX_PAGES", 500, minimum=1, maximum=50_000)
# Off by default: any organization's owner can add a URL, and the worker fetching internal
# addresses (cloud metadata, the database, admin panels) would leak them into a bot's answers.
# Turn on for intranet help centres when every organization on this instance is trusted.
KNOWLEDGE_FETCH_PRIVATE_NETWORKS = env_bool("KNOWLEDGE_FETCH_PRIVATE_NETWORKS", False)

# --- Actions: calls to the business's own endpoints (actions/services.py) ---------------------
# Off by default, like the other outgoing requests: any admin can type an action's URL, and calls
# to internal addresses would let a tenant reach this instance's network. Turn on when the
# business's systems are on the intranet and every organization on this instance is trusted.
ACTIONS_ALLOW_PRIVATE_NETWORKS = env_bool("ACTIONS_ALLOW_PRIVATE_NETWORKS", False)
# The demo shop (/demo/shop/api/, actions/demo.py) that `seed_demo`'s actions call: served, and
# reachable on this instance's own address, in development only unless asked for.
DEMO_SHOP = env_bool("DEMO_SHOP", DEBUG)

# --- Conversations: the answering model and the chat channels ------------------------------------
# Any OpenAI-compatible endpoint; a bot's own LLM fields override these. With neither a key nor
# a base URL the bots answer extractively, quoting their knowledge (no LLM needed).
LLM_BASE_URL = env_str("LLM_BASE_URL") or env_str("OPENAI_BASE_URL")
LLM_API_KEY = env_str("LLM_API_KEY") or env_str("OPENAI_API_KEY")
LLM_MODEL = env_str("LLM_MODEL", "gpt-4o-mini")
# Seconds to wait for the LLM's first token (and between tokens) before falling back.
LLM_TIMEOUT = env_int("LLM_TIMEOUT", 15, minimum=1, maximum=300)
# Answers computed at once per web process, from the widget and the API alike (chat.turns);
# more wait their turn (each holds a thread).
CHAT_TURN_THREADS = env_int("CHAT_TURN_THREADS", 8, minimum=1, maximum=256)
CHAT_MAX_MESSAGE_CHARS = env_int("CHAT_MAX_MESSAGE_CHARS", 4000, minimum=100, maximum=100_000)
# A bot message `pending` with no heartbeat for this long was cut off (a crash, a restart): it is
# retried. The heartbeat beats every 2 s while an answer is written (chat.runner.heartbeat).
CHAT_PENDING_STALE_SECONDS = env_int("CHAT_PENDING_STALE_SECONDS", 10, minimum=10)
# How often the serving process sweeps for cut-off answers (chat.recovery); 0: only
# the worker's schedule, every minute.
CHAT_RECOVER_EVERY_SECONDS = env_int("CHAT_RECOVER_EVERY_SECONDS", 3, minimum=0)
# Fault injection for the crash tests and `manage.py bench_recovery`, never for production:
# the first attempt of every answer waits this long after it is saved, so a process can be
# killed mid-answer (the recovery's retry does not wait).
CHAT_FAULT_ANSWER_DELAY_SECONDS = env_int("CHAT_FAULT_ANSWER_DELAY_SECONDS", 0, minimum=0)
# Messages a minute, per visitor (per customer on the API) and per client IP on the widget.
# Fixed one-minute windows in the cache: shared by all processes only when REDIS_URL is set.
CHAT_RATE_PER_VISITOR = env_int("CHAT_RATE_PER_VISITOR", 20, minimum=1)
CHAT_RATE_PER_IP = env_int("CHAT_RATE_PER_IP", 60, minimum=1)
# The widget's other requests (hello, talk to a person, leave an e-mail, feedback, rating) are
# counted the same way, apart from messages, with the same limits.
# New conversations: per socket, and per client IP an hour (a page of fresh visitor ids must
# not fill the queue and every agent's inbox).
CHAT_CONVERSATIONS_PER_SOCKET = env_int("CHAT_CONVERSATIONS_PER_SOCKET", 5, minimum=1)
CHAT_CONVERSATIONS_PER_IP_HOUR = env_int("CHAT_CONVERSATIONS_PER_IP_HOUR", 30, minimum=1)

# --- Static files -----------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# --- Security for production ------------------------------------------------------------------
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEBUG and SITE_URL.startswith("https"))
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_PROXY") else None
# Served over https (production with an https SITE_URL): plain http is redirected, and browsers
# are told to use https only, for a year (HSTS), subdomains included.
_HTTPS_ONLY = not DEBUG and SITE_URL.startswith("https://")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", _HTTPS_ONLY)
# A container's health check asks over plain http on the loopback: answer it, don't redirect.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if _HTTPS_ONLY else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
# Preloading is a promise to browsers' built-in lists that is slow to take back: the domain's
# owner opts in (SECURE_HSTS_PRELOAD=1 and a submission), so check --deploy's reminder is off.
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]

# Content-Security-Policy on every response (config/csp.py): scripts and styles from /static/
# only, so markup or a `javascript:` link slipped in from data cannot run in this origin. The
# widget's iframe replaces frame-ancestors with its bot's allowed origins (widget_views.py);
# elsewhere framing is refused, like X-Frame-Options: DENY says to older browsers.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "connect-src": [SELF],  # + ws(s):// of the host asked, for the sockets
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [NONE],
        # Google's sign-in is a form posted here that redirects there: Chrome checks redirects.
        "form-action": [SELF, *(["https://accounts.google.com"] if GOOGLE_CLIENT_ID else [])],
        "frame-ancestors": [NONE],
    }
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO").upper()},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "pgserver": {"level": "WARNING"},  # it narrates every start and stop at INFO
    },
}
