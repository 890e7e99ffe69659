"""In-process signals. Receivers get the same :class:`~payments_gateway.models.Event` that webhooks carry.

``event_emitted`` is sent once per event, after the transaction that wrote it commits::

    from django.dispatch import receiver
    from payments_gateway.signals import event_emitted

    @receiver(event_emitted)
    def on_event(sender, event, **kwargs):
        if event.type == "payment.completed":
            ...

Arguments: ``sender`` is the ``Event`` class, ``event`` the saved ``Event`` (``event.type``, ``event.data``,
``event.envelope()``), ``deliveries`` the number of webhook deliveries queued for it.
"""

from django.dispatch import Signal

event_emitted = Signal()
