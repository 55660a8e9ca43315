"""`nnlite train MODEL` as one rank of `mpiexec -n N nnlite train MODEL`.

--batch (or the recipe's batch) is the GLOBAL batch: each of the N ranks
trains on batch / N samples of it, so the run sees the batches, and follows
the curve, of one process at that batch (up to float32 rounding, and with
--sync-bn where the model has BatchNorm). Rank 0 checks --out, writes the
checkpoints, metrics.json and curves.png and shows the progress bar; every
rank reads last.h5 on --resume (so --out must be on a file system all
hosts share). Each rank takes the node's cores divided by the ranks on it
as threads, unless NNLITE_NUM_THREADS says otherwise. An error on any rank
prints the rank and the step and ends the job (MPI_Abort); a rank that
stops answering is reported by the others after NNLITE_DIST_TIMEOUT s.
"""
import contextlib
import io
import os
import sys
import traceback

from nnlite.cli_train import (CommandError, _check_run_directory, _initialise, _recipe,
                              _report_run, _training_module_and_out_dir, _writable_directory,
                              resume_command)


def _agree_on_run_directory(args, group, out_dir):
    """Rank 0 checks --out (the others would see the files it creates); all
    ranks learn its verdict. Returns the status to exit with, or None."""
    refusal = None
    if group.is_root:
        try:
            _check_run_directory(out_dir, args)
            _writable_directory(out_dir, "--out")
        except CommandError as exc:
            refusal = exc
    verdict = group.bcast_object(None if refusal is None else refusal.status,
                                 what="rank 0's check of --out")
    if refusal is not None:
        raise refusal
    return verdict


def _share_the_node(group):
    import nnlite as nl
    from nnlite import threads
    if not os.environ.get(threads.ENV, "").strip():
        nl.set_num_threads(max(1, threads.available_cores() // group.local_size))


def _pick_gpu(group):
    import cupy
    cupy.cuda.Device(group.local_rank % cupy.cuda.runtime.getDeviceCount()).use()


def run_train_distributed(args, group):
    from nnlite import distributed
    from nnlite.training import Trainer
    module, out_dir = _training_module_and_out_dir(args)
    status = _agree_on_run_directory(args, group, out_dir)
    if status is not None:
        return status  # rank 0 said why
    trainer, where = None, "before training"
    try:
        _share_the_node(group)
        if args.device == "cuda":
            _pick_gpu(group)
        quiet = contextlib.nullcontext() if group.is_root else \
            contextlib.redirect_stderr(io.StringIO())
        with quiet:  # one progress bar for the validation set, rank 0's
            recipe = _recipe(module, args)
        _initialise(recipe.model, module, args)  # every rank alike (then broadcast anyway)
        try:
            train_loader = distributed.shard_loader(recipe.train_loader, group)
        except ValueError as exc:
            raise CommandError(f"--batch: {exc}") from None
        if args.sync_bn:
            distributed.convert_sync_batchnorm(recipe.model, group)
        recipe.model.to(args.device)  # the Reducer's buckets live where the gradients do
        reducer = distributed.Reducer(recipe.model.parameters(), group,
                                      reduction=args.reduction)
        trainer = Trainer(recipe.model, recipe.optimizer, recipe.task, train_loader,
                          recipe.val_loader, steps=args.steps or recipe.steps, out_dir=out_dir,
                          scheduler=recipe.scheduler,
                          eval_every=args.eval_every or recipe.eval_every,
                          log_every=recipe.log_every, device=args.device, seed=args.seed,
                          distributed=reducer, clip_grad_norm=args.clip_grad_norm)
        where = None
        history = trainer.fit(resume=args.resume, overwrite=args.overwrite)
    except CommandError:
        raise  # the same on every rank: rank 0 prints it
    except KeyboardInterrupt:
        if group.is_root:
            print(f"\nnnlite train: interrupted; saved the state after step {trainer.step} to "
                  f"{trainer.last_path}; continue with: mpiexec -n {group.size} "
                  f"{resume_command(args, out_dir)}", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - any failure on one rank must end every rank
        where = where or f"at step {trainer.step + 1}"
        sys.stdout.flush()
        traceback.print_exc()
        group.abort(f"nnlite train: rank {group.rank} failed {where}: "
                    f"{type(exc).__name__}: {exc}; ending the job")
    if group.is_root:
        _report_run(trainer, history, recipe.task.metric_name)
    return 0
