variable "project_id" {
  description = "Google Cloud project that runs the functions and holds the secrets."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a Google Cloud project id (6-30 lowercase letters, digits, hyphens)."
  }
}

variable "region" {
  description = "Region of the functions, the scheduler jobs and the source bucket."
  type        = string
  default     = "europe-west3"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.region))
    error_message = "region must be a Google Cloud region such as europe-west3."
  }
}

variable "source_zip" {
  description = "The zip `make package` builds from functions/ (its MD5 names the uploaded object)."
  type        = string
  default     = "../.build/functions.zip"
}

variable "bpium_url" {
  description = "The company's Bpium address, e.g. https://acme.bpium.ru (the code adds /api/v1)."
  type        = string

  validation {
    condition     = can(regex("^https://[^/]+$", trimsuffix(var.bpium_url, "/")))
    error_message = "bpium_url must be https://<host>, without a path."
  }
}

variable "bpium_meetings_catalog" {
  description = "Catalog id of «Встречи» (Meetings)."
  type        = string

  validation {
    condition     = length(trimspace(var.bpium_meetings_catalog)) > 0
    error_message = "bpium_meetings_catalog is required."
  }
}

variable "bpium_fields" {
  description = "Role → field id of the Meetings catalog (`make doctor fields` proposes it)."
  type        = map(string)

  validation {
    condition = alltrue([
      for role in ["title", "start", "end", "agenda", "employees", "guests", "event_id"] :
      contains(keys(var.bpium_fields), role)
    ])
    error_message = "bpium_fields needs the roles title, start, end, agenda, employees, guests and event_id."
  }

  validation {
    condition = alltrue([
      for role in keys(var.bpium_fields) :
      contains(["title", "start", "end", "agenda", "employees", "guests", "event_id", "location", "reminders", "calendar", "meet", "link", "responses", "status"], role)
    ])
    error_message = "bpium_fields has an unknown role; known: title, start, end, agenda, employees, guests, event_id, location, reminders, calendar, meet, link, responses, status."
  }
}

variable "bpium_employees_catalog" {
  description = "Catalog holding the employees' e-mails."
  type        = string
  default     = "$users"
}

variable "bpium_employee_email_field" {
  description = "Field with the e-mail in the employees' catalog."
  type        = string
  default     = "$email"
}

variable "google_calendar_id" {
  description = "Calendar for meetings that name none."
  type        = string
  default     = "primary"
}

variable "time_zone" {
  description = "IANA time zone of the events (and of the scheduler jobs)."
  type        = string
  default     = "Europe/Moscow"

  validation {
    condition     = can(regex("^[A-Za-z_]+(/[A-Za-z0-9_+-]+){0,2}$", var.time_zone))
    error_message = "time_zone must be an IANA zone such as Europe/Moscow."
  }
}

variable "default_duration_minutes" {
  description = "Length of a meeting that has no end."
  type        = number
  default     = 60

  validation {
    condition     = var.default_duration_minutes >= 1 && var.default_duration_minutes <= 1440
    error_message = "default_duration_minutes must be 1-1440."
  }
}

variable "default_reminders" {
  description = "Reminders of meetings without their own, e.g. popup:10,email:1440; empty = the calendar's defaults."
  type        = string
  default     = ""

  validation {
    condition     = var.default_reminders == "" || can(regex("^(popup|email):[0-9]{1,5}(,(popup|email):[0-9]{1,5}){0,4}$", replace(var.default_reminders, " ", "")))
    error_message = "default_reminders must be up to 5 of method:minutes, method popup or email."
  }
}

variable "reminder_method" {
  description = "How the minutes of a meeting's reminders field remind: popup or email."
  type        = string
  default     = "popup"

  validation {
    condition     = contains(["popup", "email"], var.reminder_method)
    error_message = "reminder_method must be popup or email."
  }
}

variable "webhook_max_age_minutes" {
  description = "A webhook whose timestamp is older than this is a replay and changes nothing."
  type        = number
  default     = 60

  validation {
    condition     = var.webhook_max_age_minutes >= 1 && floor(var.webhook_max_age_minutes) == var.webhook_max_age_minutes
    error_message = "webhook_max_age_minutes must be a whole number of at least 1."
  }
}

variable "send_updates" {
  description = "Whom Google e-mails on every write: all, externalOnly or none."
  type        = string
  default     = "all"

  validation {
    condition     = contains(["all", "externalOnly", "none"], var.send_updates)
    error_message = "send_updates must be all, externalOnly or none."
  }
}

variable "token_refresh_margin_minutes" {
  description = "refresh_tokens renews a token that expires within this; must exceed the schedule's interval."
  type        = number
  default     = 40

  validation {
    condition     = var.token_refresh_margin_minutes >= 10 && var.token_refresh_margin_minutes <= 55
    error_message = "token_refresh_margin_minutes must be 10-55 (Google's tokens live 60 minutes)."
  }
}

variable "reconcile_lookback_days" {
  description = "How far back reconcile checks meetings."
  type        = number
  default     = 1

  validation {
    condition     = var.reconcile_lookback_days >= 0 && var.reconcile_lookback_days <= 366
    error_message = "reconcile_lookback_days must be 0-366."
  }
}

variable "reconcile_lookahead_days" {
  description = "How far ahead reconcile checks meetings."
  type        = number
  default     = 90

  validation {
    condition     = var.reconcile_lookahead_days >= 1 && var.reconcile_lookahead_days <= 730
    error_message = "reconcile_lookahead_days must be 1-730."
  }
}

variable "log_level" {
  description = "DEBUG, INFO, WARNING, ERROR or CRITICAL."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING, ERROR or CRITICAL."
  }
}

variable "refresh_schedule" {
  description = "Cron schedule of refresh_tokens (in time_zone); keep it shorter than the refresh margin."
  type        = string
  default     = "*/30 * * * *"

  validation {
    condition     = length(split(" ", trimspace(var.refresh_schedule))) == 5
    error_message = "refresh_schedule must be a five-field cron expression."
  }
}

variable "reconcile_schedule" {
  description = "Cron schedule of reconcile (in time_zone)."
  type        = string
  default     = "15 * * * *"

  validation {
    condition     = length(split(" ", trimspace(var.reconcile_schedule))) == 5
    error_message = "reconcile_schedule must be a five-field cron expression."
  }
}

variable "watch_schedule" {
  description = "Cron schedule of watch_calendars (in time_zone). Hourly renews each channel long before the 24 h margin and heals a missing one within the hour, for a few Firestore reads a run."
  type        = string
  default     = "15 * * * *"

  validation {
    condition     = length(split(" ", trimspace(var.watch_schedule))) == 5
    error_message = "watch_schedule must be a five-field cron expression."
  }
}

variable "from_google" {
  description = "Comma list of the roles among title, start, end, agenda, location that follow a change a person makes in Google; empty = none (only the answers and the status flow back)."
  type        = string
  default     = ""

  validation {
    condition = alltrue([
      for role in split(",", var.from_google) :
      contains(["title", "start", "end", "agenda", "location"], trimspace(role)) if trimspace(role) != ""
    ])
    error_message = "from_google may list only title, start, end, agenda and location, separated by commas."
  }
}

variable "bpium_api_user_id" {
  description = "The Bpium user id of the integration's API user (its record in $users); empty = learned at run time from the login in bpium-credentials."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^[0-9]*$", var.bpium_api_user_id))
    error_message = "bpium_api_user_id must be a Bpium user id (digits), or empty."
  }
}

variable "firestore_database" {
  description = "Name of the Firestore database of the shared state, a named database of its own (never the project's (default))."
  type        = string
  default     = "bpium-gcal"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,61}[a-z0-9]$", var.firestore_database))
    error_message = "firestore_database must be a named database id: 4-63 lowercase letters, digits and hyphens, a letter first (not (default))."
  }
}

variable "firestore_location" {
  description = "Firestore location of the state database, a region (europe-west3) or a multi-region (eur3); empty = region. Fixed once the database exists."
  type        = string
  default     = ""

  validation {
    condition     = var.firestore_location == "" || can(regex("^([a-z]+-[a-z]+[0-9]+|[a-z]+[0-9]+)$", var.firestore_location))
    error_message = "firestore_location must be a Firestore location such as europe-west3 or eur3, or empty for the region."
  }
}

variable "memory" {
  description = "Memory of each function instance."
  type        = string
  default     = "512Mi"

  validation {
    condition     = contains(["256Mi", "512Mi", "1Gi", "2Gi"], var.memory)
    error_message = "memory must be 256Mi, 512Mi, 1Gi or 2Gi."
  }
}

variable "min_instances" {
  description = "Instances kept warm per function (0 = scale to zero, cheapest)."
  type        = number
  default     = 0

  validation {
    condition     = var.min_instances >= 0 && var.min_instances <= 5
    error_message = "min_instances must be 0-5."
  }
}

variable "max_instances" {
  description = "Upper bound of instances per function (bounds cost); sync_meeting, sync_calendar, reconcile and watch_calendars always run at most one (the first three carry Bpium's rate budget)."
  type        = number
  default     = 5

  validation {
    condition     = var.max_instances >= 1 && var.max_instances <= 100
    error_message = "max_instances must be 1-100."
  }
}

variable "functions" {
  description = "Which functions to deploy (all by default)."
  type        = set(string)
  default     = ["on_meeting_created", "on_meeting_updated", "on_meeting_deleted", "list_events", "create_calendar", "on_calendar_push", "refresh_tokens", "reconcile", "watch_calendars", "sync_meeting", "sync_calendar"]

  validation {
    condition = alltrue([
      for name in var.functions :
      contains(["on_meeting_created", "on_meeting_updated", "on_meeting_deleted", "list_events", "create_calendar", "on_calendar_push", "refresh_tokens", "reconcile", "watch_calendars", "sync_meeting", "sync_calendar"], name)
    ])
    error_message = "functions may list on_meeting_created, on_meeting_updated, on_meeting_deleted, list_events, create_calendar, on_calendar_push, refresh_tokens, reconcile, watch_calendars, sync_meeting, sync_calendar."
  }

  validation {
    condition = contains(var.functions, "sync_meeting") || !anytrue([
      for name in ["on_meeting_created", "on_meeting_updated", "on_meeting_deleted"] : contains(var.functions, name)
    ])
    error_message = "The webhook functions queue their work for sync_meeting: deploy it with them."
  }

  validation {
    condition = contains(var.functions, "sync_calendar") || !anytrue([
      for name in ["on_calendar_push", "watch_calendars"] : contains(var.functions, name)
    ])
    error_message = "on_calendar_push and watch_calendars queue calendars' syncs for sync_calendar: deploy it with them."
  }

  validation {
    condition     = contains(var.functions, "on_calendar_push") || !contains(var.functions, "watch_calendars")
    error_message = "The channels watch_calendars opens push to on_calendar_push: deploy it with watch_calendars."
  }
}

variable "alert_email" {
  description = "Where alerts go: a revoked Google token, failing functions, queued syncs that do not get done."
  type        = string

  validation {
    condition     = can(regex("^[^@ ]+@[^@ ]+\\.[^@ ]+$", var.alert_email))
    error_message = "alert_email must be an e-mail address."
  }
}
