# The secrets' containers. Their values never pass through Terraform (nor its state): put
# them with `make secrets` and `make authorize` (README «Deploy»).

locals {
  secrets = {
    "bpium-credentials"    = "JSON {login, password} of the Bpium API user"
    "bpium-webhook-secret" = "the webhooks' «Секретная строка»"
    "api-key"              = "key the Bpium scenarios send to list_events and create_calendar"
    "google-oauth-client"  = "JSON {client_id, client_secret} of the Desktop OAuth client"
    "google-oauth-token"   = "JSON {refresh_token, access_token, expiry, scopes}; written by refresh_tokens"
    # Put with `make secrets ONLY=google-channel-token` (a long random string); each channel
    # carries the value it was opened with.
    "google-channel-token" = "the token every events.watch channel carries (X-Goog-Channel-Token), checked by on_calendar_push"
  }
}

resource "google_secret_manager_secret" "secret" {
  for_each  = local.secrets
  secret_id = each.key
  labels    = local.labels
  annotations = {
    content = each.value
  }

  replication {
    auto {}
  }

  depends_on = [google_project_service.apis]
}
