"""Berth's endpoints for aws CLI versions that do not read the services section.

`berth up` writes an AWS config file whose profile names a services section
(services = berth) holding the endpoint of Berth's ECS API for ecs and sts. The
aws CLI reads that section from version 2.13 on; older versions (Debian's and
Ubuntu's packages among them) ignore it and would call Amazon. The CLI loads this
module as a plugin (the config file's [plugins] section and
cli_legacy_plugin_path); once the global options are parsed, it sets
--endpoint-url for ecs and sts from the services section, unless the command line
or the environment already chose an endpoint or the CLI reads the section itself.
"""

import os

SERVICES = ("ecs", "sts")


def awscli_initialize(cli):
    cli.register("top-level-args-parsed", set_endpoint)


def set_endpoint(parsed_args, session, **kwargs):
    service = getattr(parsed_args, "command", None)
    if service not in SERVICES or getattr(parsed_args, "endpoint_url", None):
        return
    # botocore 1.31 (aws CLI 2.13) resolves the services section and the
    # AWS_ENDPOINT_URL variables itself; it introduced this setting with them.
    if "ignore_configured_endpoint_urls" in session.session_var_map:
        return
    url = configured_endpoint(session, service, getattr(parsed_args, "profile", None))
    if url:
        parsed_args.endpoint_url = url


def configured_endpoint(session, service, profile):
    """The endpoint of service as newer CLIs resolve it: the service's and then
    the global environment variable, then the profile's services section."""
    if os.environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() == "true":
        return None
    for name in ("AWS_ENDPOINT_URL_" + service.upper(), "AWS_ENDPOINT_URL"):
        if os.environ.get(name):
            return os.environ[name]
    # Not session.profile: that caches the profile before the CLI sets --profile.
    profile = profile or session.get_config_variable("profile") or "default"
    config = session.full_config
    section = config.get("profiles", {}).get(profile, {}).get("services")
    if not section:
        return None
    entry = config.get("services " + section, {}).get(service)
    if isinstance(entry, dict):
        return entry.get("endpoint_url")
    return None
