"""The signal sent when a job has ended: once per job, after the transaction that wrote its final
status (and its JobEvent) has committed. Receivers get `event` (a videos.models.JobEvent) and
`origin`, where the job was asked for (a videos.models.Origin), and `notify`, whether its owner
asked to be emailed when it ends, so that one that cares about some jobs only (the API's webhooks,
the "done" emails of videos/services/alerts.py) need not read anything for the others.

A receiver must not wait on the network (it runs in the web request or worker step that ended the
job): it writes its own records and enqueues its own work, as api/webhooks.py does. A signal lost
with its process is made up for from the JobEvent rows by the receiver's own catch-up.
"""

from django.dispatch import Signal

job_ended = Signal()
