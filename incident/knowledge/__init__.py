"""The knowledge base (issue 13 item 5): the archive's pages pushed to Confluence Cloud and Notion."""
