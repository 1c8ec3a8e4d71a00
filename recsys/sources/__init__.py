"""Candidate sources on the training side: fit item-item neighbours (EASE or item-kNN), popularity and trending
on a window of interactions, and store them in their light serving form (`recsys.ranking.candidates`)."""
