# Alerts by e-mail: a Google token that only a person can fix, and failed runs.

resource "google_monitoring_notification_channel" "email" {
  display_name = "Bpium calendar alerts"
  type         = "email"
  labels = {
    email_address = var.alert_email
  }
  depends_on = [google_project_service.apis]
}

resource "google_monitoring_alert_policy" "reauthorization_required" {
  display_name          = "Bpium calendar: Google access must be authorized again"
  combiner              = "OR"
  notification_channels = [google_monitoring_notification_channel.email.id]

  conditions {
    display_name = "refresh_tokens logged reauthorization_required"
    condition_matched_log {
      filter = "resource.type=\"cloud_run_revision\" AND severity=\"CRITICAL\" AND jsonPayload.message=\"reauthorization_required\""
    }
  }

  alert_strategy {
    notification_rate_limit {
      period = "3600s"
    }
    auto_close = "86400s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Google no longer accepts the stored refresh token. Run `make authorize` (README, «Google account») with SECRETS_BACKEND=secret-manager and GCP_PROJECT=${var.project_id}, and make sure the OAuth app is published (an app in Testing loses its tokens after 7 days)."
  }
}

resource "google_monitoring_alert_policy" "failed_runs" {
  display_name          = "Bpium calendar: a function failed"
  combiner              = "OR"
  notification_channels = [google_monitoring_notification_channel.email.id]

  conditions {
    display_name = "an ERROR <function>_failed log entry"
    condition_matched_log {
      filter = "resource.type=\"cloud_run_revision\" AND severity>=\"ERROR\" AND jsonPayload.message=~\"_failed$\" AND resource.labels.service_name=(${join(" OR ", [for name in keys(local.functions) : "\"${replace(name, "_", "-")}\""])})"
    }
  }

  alert_strategy {
    notification_rate_limit {
      period = "3600s"
    }
    auto_close = "86400s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "A function answered 5xx. Its log entry names the catalog, record, hook event, sequence id and error code; a webhook that failed is healed by the next change of the record (or by reconcile). For refresh_tokens failures, see the error code: upstream_unavailable passes by itself, reauthorization_required needs `make authorize`."
  }
}
