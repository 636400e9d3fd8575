"""Operations: the delivery log queries, resend and recovery, endpoint stats, retention."""
