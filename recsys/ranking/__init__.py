"""The ranker's evaluator, `tree_ensemble.TreeEnsemble`: CatBoost JSON exports scored with numpy, no training libraries."""
