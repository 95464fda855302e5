/*
 * modules/submission/enqueue.c: the hand-over of a submitted message to the
 * outbound queue (gannet/queue.h, gn_queue_add()).
 *
 * TEMPORARY: the queue is being written on another branch and is not in
 * the core yet.  Until it is, every message that passed all checks is
 * refused here with 451 4.3.0 "queue not available" and logged
 * (event=queue_unavailable): fail closed, the client keeps the message and
 * retries; never 250 without the message committed.
 *
 * Wiring the queue is a change of this file only: in one database
 * transaction gn_queue_add() with msg (envelope, hold_until, extra, data)
 * and submission_limits_record(), commit, then 250 2.0.0 with the queue
 * id; 451 4.3.0 when anything fails.  (t/integration/220-submission.t
 * marks the one expectation to change.)
 */
#include "submission.h"

void submission_enqueue(struct gn_smtp_session *s, const struct submission_message *msg)
{
	gn_log(GN_LOG_WARN, SUBMISSION_AREA, "event=queue_unavailable id=%s tx=%s account=%s "
	       "recipients=%zu size=%zu extra=%zu hold_until=%lld message_id=%s",
	       gn_conn_id(gn_smtp_session_conn(s)), msg->tx_id, gn_log_quote(0, msg->account),
	       msg->rcpt_count, msg->size, msg->extra_count, (long long)msg->hold_until,
	       gn_log_quote(1, msg->message_id != NULL ? msg->message_id : "-"));
	gn_smtp_answer(s, 451, "4.3.0", "queue not available");
}
