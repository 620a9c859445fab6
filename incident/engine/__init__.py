"""How the flow runs execute: Prefect's own Runner for the incidents, in-process flow calls for the
feedback (the database rows are the queue), a periodic sweep, and the processes around them."""
