"""K-fold cross-validation to a checked submission (``tools/cv.py``).

Stages, each a module writing under ``work_dir`` and skipped when a run of the same
command finished it before (the run record is ``cv.json``, :mod:`.run`; another
command there is refused):

1. **splits** (:mod:`.splits`, ``splits/``): the labelled pool (:mod:`.pool`) is the
   config's ``train_dataloader.dataset`` without its fold selection. Its images are
   split with the fold algorithm of its data set type (hand-bone: grouped by patient;
   COCO: stratified by category presence; image/label folders: stratified by the label
   values present), or read from the split files of ``tools/kfold.py``.
2. **folds** (:mod:`.folds`, ``fold<k>/``): each fold trains the config with the stock
   runner on the other folds and validates on fold ``k`` (the config's val pipeline and
   evaluator); ``done.json`` marks a finished fold. Folds run in this process one after
   the other, or as ``tools/train.py`` / ``tools/dist_train.sh`` processes, several at
   once on several GPUs (:mod:`.commands`).
3. **out-of-fold probabilities** (:mod:`.oof`, ``fold<k>/val_probs`` merged into
   ``oof_probs``): every pool image predicted by the one model that never saw it; an
   image missing or predicted twice stops the run.
4. **scores and tuning** (:mod:`.tuning` with :mod:`.decisions`, ``tuned/``): the OOF
   folder is scored with the data set's metric: multi-label, the competition Dice per
   class (mean over images) at 0.5, then with per-class thresholds and per-class
   component clean-up chosen on the OOF images only (and, with TTA, the TTA per class
   and the collapsed folds); multi-class, IoU per class from one confusion matrix. The
   settings are written as the JSON files ``tools/make_submission.py`` reads.
5. **test** (:mod:`.testset`, ``test/``, with ``test_dir``): every fold model predicts
   the test images, the fold probabilities are averaged, the tuned settings are applied
   and the submission CSV is written and checked.
6. **summary** (:mod:`.summary`): ``summary.json`` holds the scores and the paths of
   everything written.

:func:`cross_validate` (:mod:`.workflow`) runs them in that order.

The work directory is the tool's alone (:mod:`mmseg_ext.io.ownership`): it is locked
while a run uses it, every output is listed in its manifest as it is written, ``force``
removes only listed outputs that are unchanged, and a folder the tool did not make, or
one that is, holds or lies inside an input, is refused. Reused results prove what they
are: a fold's ``done.json`` its fold, training list and checkpoint content
(:func:`~mmseg_ext.training.stages.stage_result`), a reused probability folder the
checkpoint's fingerprint and the names, sizes and modification times of its images
(:mod:`.predict`).
"""
from .commands import FoldCommand, check_ranks_per_fold, run_commands
from .decisions import CANDIDATE_DIR
from .folds import fold_claims, use_fold
from .oof import merge_oof
from .pool import Pool, config_task, read_pool
from .predict import checkpoint_stamp, prediction_source
from .run import RUN_RECORD, TOOL, clear_earlier_run
from .splits import make_pool_folds, read_pool_folds
from .summary import CVSummary, FoldSummary
from .testset import FORMAT_OF, TEST_RECORD, check_test_inputs
from .tuning import TuningResult, dataset_gt_maps, score_multiclass, tune_multilabel
from .workflow import cross_validate

__all__ = [
    'CANDIDATE_DIR', 'CVSummary', 'FORMAT_OF', 'FoldCommand', 'FoldSummary', 'Pool',
    'RUN_RECORD', 'TEST_RECORD', 'TOOL', 'TuningResult', 'check_ranks_per_fold',
    'check_test_inputs', 'checkpoint_stamp', 'clear_earlier_run', 'config_task',
    'cross_validate', 'dataset_gt_maps', 'fold_claims', 'make_pool_folds', 'merge_oof',
    'prediction_source', 'read_pool', 'read_pool_folds', 'run_commands',
    'score_multiclass', 'tune_multilabel', 'use_fold'
]
