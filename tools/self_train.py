"""Semi-supervised training in one command: offline self-training or UniMatch-style
weak-to-strong consistency.

    python tools/self_train.py TEACHER_CONFIG STUDENT_CONFIG --unlabelled IMG_DIR
        --work-dir DIR [--method offline|unimatch] [--unlabelled-list LIST]
        [--img-suffix .jpg] [--teacher-checkpoint CKPT] [--rounds 1] [--pixel-conf C]
        [--max-uncertain 1.0] [--min-mean-conf 0] [--student-init scratch|teacher]
        [--student-iters N] [--control] [--force] [--cfg-options key=value ...]

--method offline (default):
1. trains TEACHER_CONFIG (the labelled-only config), unless --teacher-checkpoint;
2. predicts the unlabelled images and writes pseudo-labels in the data set's format
   (label PNGs with pixels below --pixel-conf ignored; hand-bone polygon JSON for
   multi-label data, images with too many uncertain pixels left out);
3. trains STUDENT_CONFIG on its labelled set plus the pseudo-labelled images;
4. repeats 2-3 with the student as teacher for --rounds > 1.

--method unimatch: step 1, then one training of STUDENT_CONFIG wrapped in the
weak-to-strong segmentor on its labelled set plus the unlabelled images (each batch as
many of each), started from the teacher's weights (--student-init teacher, this
method's default). --pixel-conf (default 0.95 here) is the confidence a weak-view
prediction needs to teach the strong views.

--control also trains STUDENT_CONFIG from the teacher on the labelled images alone for
the student's iterations: the row that tells what the unlabelled images add.

Outputs under DIR: teacher/, round<k>/{probs,pseudo,student}/ or student/, control/,
summary.json. The last line names the final checkpoint. See docs/semi_supervised.md.
"""
import os.path as _osp
import os.path as osp
import sys as _sys

_sys.path.insert(0, _osp.dirname(_osp.abspath(__file__)))  # python -I leaves it off
import _bootstrap  # noqa: F401,E402  (makes the checkout importable)

from mmseg_ext import register_all_modules
from mmseg_ext.utils.cli import (
    ToolParser,
    cfg_options_action,
    cli_main,
    file_suffix,
    number_in_range,
)


def parse_args(argv=None):
    p = ToolParser(description='Offline self-training: teacher -> pseudo-labels -> student')
    p.add_argument('teacher_config', role='config', help='labelled-only config (the teacher)')
    p.add_argument('student_config', role='config', help='student config; its train_dataloader.dataset '
                   'is the labelled set, the pseudo-labelled images are added to it')
    p.add_argument('--unlabelled', required=True, metavar='IMG_DIR', role='input',
                   help='folder of the unlabelled images')
    p.add_argument('--unlabelled-list', metavar='LIST', role='input',
                   help='file naming the unlabelled images under IMG_DIR (one stem or path '
                   'a line, e.g. a train_fold file of tools/kfold.py); default: all')
    p.add_argument('--img-suffix', default='.jpg', role='text', type=file_suffix,
                   help='suffix of the unlabelled images (default .jpg)')
    p.add_argument('--work-dir', required=True, role='output', help='where every stage writes')
    p.add_argument('--teacher-checkpoint', metavar='CKPT', role='input',
                   help='a trained checkpoint of TEACHER_CONFIG: skip step 1')
    p.add_argument('--method', choices=['offline', 'unimatch'], default='offline',
                   help='offline pseudo-label rounds (default) or one UniMatch-style '
                   'weak-to-strong training')
    p.add_argument('--rounds', type=number_in_range(int, 1), default=1,
                   help='self-training rounds, >= 1 (default 1; unimatch: 1)')
    p.add_pseudo_label_flags(None, '0.9 offline, 0.95 unimatch')
    p.add_argument('--student-init', choices=['scratch', 'teacher'], default=None,
                   help="the student starts from its config's initialisation or from the "
                   "teacher's weights (default: scratch for offline, teacher for unimatch)")
    p.add_argument('--student-iters', type=number_in_range(int, 1, 2 ** 31 - 1),
                   metavar='N', help="train each student (and the control) N iterations, "
                   "the schedule's warm-up and decay with it (default: the student "
                   "config's)")
    p.add_argument('--control', action='store_true',
                   help='also train the student config from the teacher on the labelled '
                   'images alone, for as many iterations (needs --student-init teacher)')
    p.add_argument('--cfg-options', nargs='+', action=cfg_options_action(), role='text',
                   help='overrides for both configs, e.g. data roots')
    p.add_argument('--force', action='store_true',
                   help='start again in a WORK_DIR of an earlier run, replacing its '
                   'outputs (without it, the same command resumes an unfinished run and '
                   'another command is refused before anything trains)')
    p.add_argument('--no-progress', action='store_true', help='no progress bars')
    return p.parse_args(argv)


@cli_main(flags={'teacher_config': 'TEACHER_CONFIG', 'student_config': 'STUDENT_CONFIG'})
def main(argv=None):
    args = parse_args(argv)
    register_all_modules()  # environment check first: one line when it cannot work
    from mmseg_ext.workflows.self_training import metrics_text, self_train, summary_table
    s = self_train(args.teacher_config, args.student_config, args.unlabelled, args.work_dir,
                   unlabelled_list=args.unlabelled_list, img_suffix=args.img_suffix,
                   teacher_checkpoint=args.teacher_checkpoint, rounds=args.rounds,
                   pixel_conf=args.pixel_conf, max_uncertain=args.max_uncertain,
                   min_mean_conf=args.min_mean_conf, student_init=args.student_init,
                   cfg_options=args.cfg_options, force=args.force,
                   progress=not args.no_progress, method=args.method,
                   student_iters=args.student_iters, control=args.control)
    print('=== self-training finished ===')
    print(f'teacher      : {s.teacher_checkpoint} {metrics_text(s.teacher_metrics)}')
    for r in s.rounds:
        print(f'round {r.round}      : {r.accepted} of {r.unlabelled_images} unlabelled images '
              f'pseudo-labelled ({r.pseudo_dir})')
        print(f'student {r.round}    : {r.student_checkpoint} {metrics_text(r.student_metrics)}')
    if s.student is not None:
        print(f'student      : {s.student.checkpoint} {metrics_text(s.student.metrics)}')
    if s.control is not None:
        print(f'control      : {s.control.checkpoint} {metrics_text(s.control.metrics)}')
    print(summary_table(s))
    print(f'summary      : {osp.join(s.work_dir, "summary.json")} ({s.seconds / 60:.1f} min)')
    print(f'final model  : {s.final_checkpoint}')


if __name__ == '__main__':
    main()
